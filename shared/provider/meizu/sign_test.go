package meizu

import "testing"

// TestSignDocumentedExample checks sign against the example in Meizu's
// API documentation (MEIZUPUSH/PushAPI README, "接口签名规范").
func TestSignDocumentedExample(t *testing.T) {
	params := map[string]string{
		"appId":       "10000",
		"pushIds":     "RA50c6348036344485d01776773577c64740465480a6b",
		"messageJson": `{"title":"title","content":"content","pushTimeInfo":{"offLine":1,"validTime":24}}`,
	}
	if got, want := sign(params, "<APP_SECRET>"), "ac076ff25d9900015a681cb5172aa53b"; got != want {
		t.Errorf("sign = %s, want %s", got, want)
	}
}

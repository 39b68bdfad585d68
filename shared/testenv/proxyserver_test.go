package testenv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStartProxy checks the proxy a program starts for itself: it forwards,
// injects its faults, counts, and serves nothing once stopped.
func TestStartProxy(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{}`)
	}))
	defer target.Close()
	p, stop := StartProxy(target.URL+"/", ProxyOptions{ThrottleRate: 1})
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	post := func(amzTarget string) (int, error) {
		req, err := http.NewRequest(http.MethodPost, p.URL+"/", strings.NewReader(`{}`))
		if err != nil {
			return 0, err
		}
		if amzTarget != "" {
			req.Header.Set("X-Amz-Target", amzTarget)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	tests := []struct {
		name, amzTarget string
		want            int
	}{
		{"forwarded without a target", "", http.StatusOK},
		{"throttled with one", "DynamoDB_20120810.GetItem", http.StatusBadRequest},
	}
	for _, tt := range tests {
		got, err := post(tt.amzTarget)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, got, tt.want)
		}
	}
	counts := p.Counts()
	if got := counts[otherOp].Requests; got != 1 {
		t.Errorf("forwarded %d requests without a target, want 1", got)
	}
	if got := counts["GetItem"].Faults; got != 1 {
		t.Errorf("throttled %d GetItem calls, want 1", got)
	}
	stop()
	stopped = true
	if _, err := post(""); err == nil {
		t.Error("the proxy still answers after stop")
	}
}

package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/offline-push/offline-push/shared/policy"
	"github.com/offline-push/offline-push/shared/push"
)

// benchRecipients builds n recipients of a realistic mix: one to three
// devices across vendors, some online, some with DND windows in different
// zones, remind types and conversation settings varying.
func benchRecipients(n int) []*policy.Recipient {
	zones := []string{"UTC", "Asia/Shanghai", "America/New_York", "Europe/Berlin"}
	vendors := []push.Vendor{push.Huawei, push.Xiaomi, push.OPPO, push.Vivo, push.FCM, push.Honor, push.Meizu}
	rs := make([]*policy.Recipient, n)
	for i := range rs {
		r := &policy.Recipient{UserID: fmt.Sprintf("user-%d", i), Settings: push.DefaultSettings()}
		r.Bindings = append(r.Bindings, iphoneVoIP("phone"))
		if i%2 == 0 {
			r.Bindings = append(r.Bindings, android("pad", vendors[i%len(vendors)]))
		}
		if i%5 == 0 {
			r.Bindings = append(r.Bindings, android("tab", vendors[(i+3)%len(vendors)]))
		}
		if i%3 == 0 {
			r.Leases = append(r.Leases, online("pc", push.PlatformPC))
		}
		if i%7 == 0 {
			r.Leases = append(r.Leases, online("phone", push.PlatformIOS))
		}
		r.Leases = append(r.Leases, expired("pad", push.PlatformAndroid))
		if i%4 == 0 {
			r.Settings.Window = window("23:00", "07:00", zones[i%len(zones)])
		}
		switch i % 10 {
		case 1:
			r.Settings.RemindType = push.RemindAt
		case 2:
			r.Conversation.RemindType = push.RemindNone
		case 3:
			r.Settings.DNDUntil = now.Add(-time.Hour)
		case 4:
			r.Conversation.DNDUntil = now.Add(time.Hour)
		case 5:
			r.Settings.MultiDevicePolicy = push.AllOffline
		case 6:
			r.Settings.Language = "zh-CN"
		}
		rs[i] = r
	}
	return rs
}

// BenchmarkEvaluate measures the cost of one recipient's decisions with a
// prepared message, as ingest runs it for up to 100,000 recipients, and
// reports it per device decision. It asserts nothing about time.
func BenchmarkEvaluate(b *testing.B) {
	m := baseMessage()
	m.Content.Translations = map[string]string{"en": "lunch?", "zh": "吃饭吗?", "ja": "ランチ?", "de": "Mittag?"}
	ids := make([]string, 0, 100)
	for i := 0; i < 1000; i += 10 {
		ids = append(ids, fmt.Sprintf("user-%d", i))
	}
	m.Mentions.UserIDs = push.NewUserSet(ids...)
	m.Force.UserIDs = push.NewUserSet("user-7", "user-77")
	rs := benchRecipients(1000)
	p := policy.Prepare(m)
	out := make([]push.Decision, 0, 8)
	devices := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out = p.Evaluate(rs[i%len(rs)], now, out[:0])
		devices += len(out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(devices), "ns/device")
	b.ReportMetric(float64(devices)/float64(b.N), "devices/op")
}

// BenchmarkPrepare measures the once-per-message rendering.
func BenchmarkPrepare(b *testing.B) {
	m := baseMessage()
	m.Content.Translations = map[string]string{}
	for _, tag := range []string{"en", "zh", "ja", "de", "fr", "es", "pt-BR", "ko", "ru", "ar"} {
		m.Content.Translations[tag] = strings.Repeat("text ", 100)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		policy.Prepare(m)
	}
}

// BenchmarkFit measures truncating a long CJK text for each vendor.
func BenchmarkFit(b *testing.B) {
	title := strings.Repeat("项目组", 30)
	body := strings.Repeat("今天中午一起去吃饭吗？", 200)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		for _, v := range push.Vendors {
			policy.Fit(v, title, body)
		}
	}
}

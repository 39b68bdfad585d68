package fcm

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzShorten: the result fits, is a prefix of the text cut on a rune
// boundary and ended with an ellipsis (or the whole text, or empty), and is
// the longest such prefix.
func FuzzShorten(f *testing.F) {
	f.Add("hello world", 8)
	f.Add("吃饭吗😀吃饭吗😀", 10)
	f.Add("", 0)
	f.Add("abc", -1)
	f.Fuzz(func(t *testing.T, s string, limit int) {
		if !utf8.ValidString(s) {
			return
		}
		fits := func(x string) bool { return len(x) <= limit }
		got, ok := shorten(s, fits)
		if !ok {
			if limit >= 0 {
				t.Fatalf("shorten(%q, %d) found nothing, but the empty text fits", s, limit)
			}
			return
		}
		if !fits(got) || !utf8.ValidString(got) {
			t.Fatalf("shorten(%q, %d) = %q: does not fit or is not UTF-8", s, limit, got)
		}
		if got != s && got != "" && !(strings.HasSuffix(got, ellipsis) && strings.HasPrefix(s, strings.TrimSuffix(got, ellipsis))) {
			t.Fatalf("shorten(%q, %d) = %q: not a prefix ending in …", s, limit, got)
		}
		if got != s {
			// One more character would not fit.
			n := utf8.RuneCountInString(strings.TrimSuffix(got, ellipsis))
			longer := string([]rune(s)[:n+1])
			if longer != s {
				longer += ellipsis
			}
			if fits(longer) {
				t.Fatalf("shorten(%q, %d) = %q, but %q fits too", s, limit, got, longer)
			}
		}
	})
}

// FuzzParseCredentials: any secret is judged without a panic, and an
// accepted one names its project.
func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte(`{"vendor":"fcm","serviceAccount":{"type":"service_account","project_id":"p","client_email":"e","private_key":"x"}}`))
	f.Add([]byte(`{"vendor":"fcm","endpoint":"http://127.0.0.1:1/v1","resources":{"a":{"color":"#000000"}}}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseCredentials(data)
		if err == nil && c.project == "" {
			t.Fatal("accepted credentials without a project")
		}
	})
}

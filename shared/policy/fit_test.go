package policy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/policy"
	"github.com/offline-push/offline-push/shared/push"
)

const (
	family = "👨\u200d👩\u200d👧\u200d👦" // one emoji ZWJ sequence, 7 runes
	flags  = "🇨🇳🇺🇸🇯🇵"                 // three flags, two regional indicators each
	thumbs = "👍🏽"                     // an emoji with a skin tone modifier
	accent = "e\u0301"                // e and a combining acute accent
)

// fitSamples are the texts every vendor's budget is tried on.
var fitSamples = []struct {
	name, title, body string
}{
	{"short text fits unchanged", "Alice", "Alice: lunch?"},
	{"long ASCII", "Team " + strings.Repeat("announcements ", 10), strings.Repeat("The quick brown fox jumps over the lazy dog. ", 60)},
	{"long CJK (3 bytes per character)", strings.Repeat("项目组", 30), strings.Repeat("今天中午一起去吃饭吗？", 200)},
	{"emoji ZWJ sequences", strings.Repeat(family, 10), "Alice: " + strings.Repeat(family, 200)},
	{"flags", strings.Repeat(flags, 10), strings.Repeat(flags, 300)},
	{"skin tones", strings.Repeat(thumbs, 20), strings.Repeat(thumbs+" ", 600)},
	{"combining marks", strings.Repeat(accent, 40), strings.Repeat("caf"+accent+" ", 700)},
	{"JSON-escaped characters count as escaped", strings.Repeat("<&>", 40), strings.Repeat(`"<a href=x>&</a>"\`, 200)},
	{"spaces before the cut are trimmed", strings.Repeat("a ", 60), strings.Repeat("word ", 900)},
	{"limit plus one", strings.Repeat("x", 51), strings.Repeat("y", 101)},
}

func budgets() []policy.Budget {
	var bs []policy.Budget
	for _, v := range push.Vendors {
		bs = append(bs, policy.BudgetFor(v, false))
		if v == push.APNs {
			bs = append(bs, policy.BudgetFor(v, true))
		}
	}
	return bs
}

// TestFitGolden records, for each vendor budget (POLICY.md rule 22), how
// each sample is cut: sizes and both ends of the result.
func TestFitGolden(t *testing.T) {
	var buf bytes.Buffer
	for _, b := range budgets() {
		name := string(b.Vendor)
		if b.PayloadBytes == 5120 {
			name += " (voip)"
		}
		fmt.Fprintf(&buf, "#### %s: title %s, body %s, payload %d bytes, text %d bytes\n\n",
			name, limit(b.TitleUnits), limit(b.BodyUnits), b.PayloadBytes, b.TextBytes())
		for _, s := range fitSamples {
			title, body := b.Fit(s.title, s.body)
			fmt.Fprintf(&buf, "== %s\n", s.name)
			fmt.Fprintf(&buf, "title: %s\nbody:  %s\n\n", describe(s.title, title), describe(s.body, body))
		}
	}
	golden(t, "fit", buf.Bytes())
}

func limit(units int) string {
	if units <= 0 {
		return "no unit limit"
	}
	return fmt.Sprintf("≤ %d units", units)
}

// describe summarises a fitted text: whether it was cut, its size, and its
// first and last few characters.
func describe(in, out string) string {
	cut := "kept"
	if in != out {
		cut = "cut"
	}
	r := []rune(out)
	shown := out
	if len(r) > 16 {
		shown = string(r[:8]) + " ... " + string(r[len(r)-8:])
	}
	return fmt.Sprintf("%s %d→%d units %d→%d bytes %q", cut, policy.Units(in), policy.Units(out),
		policy.TextSize(in), policy.TextSize(out), shown)
}

func TestFitLimits(t *testing.T) {
	tests := []struct {
		name      string
		vendor    push.Vendor
		title     string
		body      string
		wantTitle string
		wantBody  string
	}{
		{"rule 22: xiaomi title < 50 characters", push.Xiaomi, strings.Repeat("t", 50), "b",
			strings.Repeat("t", 48) + "…", "b"},
		{"rule 22: xiaomi title of 49 characters fits", push.Xiaomi, strings.Repeat("t", 49), "b",
			strings.Repeat("t", 49), "b"},
		{"rule 22: xiaomi description < 128 characters", push.Xiaomi, "t", strings.Repeat("b", 128),
			"t", strings.Repeat("b", 126) + "…"},
		{"rule 22: oppo title and content ≤ 50 characters", push.OPPO, strings.Repeat("t", 51), strings.Repeat("b", 50),
			strings.Repeat("t", 49) + "…", strings.Repeat("b", 50)},
		{"rule 22: vivo title ≤ 40, content ≤ 100", push.Vivo, strings.Repeat("标", 41), strings.Repeat("文", 101),
			strings.Repeat("标", 39) + "…", strings.Repeat("文", 99) + "…"},
		{"rule 22: meizu title ≤ 32, content ≤ 100", push.Meizu, strings.Repeat("t", 32), strings.Repeat("b", 101),
			strings.Repeat("t", 32), strings.Repeat("b", 99) + "…"},
		{"rule 22: an emoji counts two units", push.Meizu, strings.Repeat("😀", 17), "b",
			strings.Repeat("😀", 15) + "…", "b"},
		{"rule 22: never cut inside a ZWJ sequence", push.Meizu, "ab" + family + family + family, "b",
			"ab" + family + family + "…", "b"},
		{"rule 22: never cut between a flag's two indicators", push.Meizu, "a" + strings.Repeat("🇨🇳", 8), "b",
			"a" + strings.Repeat("🇨🇳", 7) + "…", "b"},
		{"rule 22: never cut before a combining mark", push.Meizu, strings.Repeat("x", 30) + accent + "z", "b",
			strings.Repeat("x", 30) + "…", "b"},
		{"rule 22: APNs has no field limit below the byte budget", push.APNs, strings.Repeat("t", 100), strings.Repeat("b", 2000),
			strings.Repeat("t", 100), strings.Repeat("b", 1945) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			title, body := policy.Fit(tt.vendor, tt.title, tt.body)
			if title != tt.wantTitle {
				t.Errorf("title: got %q (%d units), want %q (%d units)", title, policy.Units(title), tt.wantTitle, policy.Units(tt.wantTitle))
			}
			if body != tt.wantBody {
				t.Errorf("body: got %q (%d units), want %q (%d units)", body, policy.Units(body), tt.wantBody, policy.Units(tt.wantBody))
			}
		})
	}
}

// TestTextSizeMatchesJSON checks TextSize against encoding/json, the
// encoder dispatch uses, so the byte budget is never underestimated.
func TestTextSizeMatchesJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "吃饭吗", family, flags, `"\`, "\n\r\t\x01\x1f", "<>&", "\u2028\u2029", "a\xffb", "\x7f"} {
		enc, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := policy.TextSize(s), len(enc)-2; got < want {
			t.Errorf("TextSize(%q) = %d, below encoding/json's %d bytes", s, got, want)
		}
	}
}

// alphabet mixes every kind of character truncation must respect.
var alphabet = []string{"a", " ", "é", "吃", "😀", "\u200d", "👩", "\ufe0f", "🏽", "🇨", "🇳", "\u0301", "<", `"`, "\n", "…"}

func randomText(r *rand.Rand, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return b.String()
}

// TestFitProperties checks what must hold for any text: the result fits
// the budget, is valid UTF-8, is the input when the input fits, and is
// otherwise a prefix of the input ending in the ellipsis.
func TestFitProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 3000; i++ {
		title := randomText(r, r.IntN(120))
		body := randomText(r, r.IntN(2500))
		for _, b := range budgets() {
			checkFit(t, b, title, body)
		}
	}
}

func checkFit(t *testing.T, b policy.Budget, title, body string) {
	t.Helper()
	gt, gb := b.Fit(title, body)
	if !b.Fits(gt, gb) {
		t.Fatalf("%s: Fit(%q, %q) = %q, %q, which does not fit", b.Vendor, title, body, gt, gb)
	}
	for _, c := range []struct{ in, out string }{{title, gt}, {body, gb}} {
		if utf8.ValidString(c.in) && !utf8.ValidString(c.out) {
			t.Fatalf("%s: %q cut to invalid UTF-8 %q", b.Vendor, c.in, c.out)
		}
		if c.out == c.in {
			continue
		}
		kept, ok := strings.CutSuffix(c.out, policy.Ellipsis)
		if !ok || !strings.HasPrefix(c.in, kept) {
			t.Fatalf("%s: %q cut to %q, not a prefix plus ellipsis", b.Vendor, c.in, c.out)
		}
		if rest := c.in[len(kept):]; rest != "" && strings.HasPrefix(rest, "\u200d") {
			t.Fatalf("%s: %q cut before a zero width joiner: %q", b.Vendor, c.in, c.out)
		}
		if strings.HasSuffix(kept, "\u200d") {
			t.Fatalf("%s: %q cut after a zero width joiner: %q", b.Vendor, c.in, c.out)
		}
	}
}

// FuzzFit looks for texts that break the properties of TestFitProperties.
func FuzzFit(f *testing.F) {
	for _, s := range fitSamples {
		f.Add(s.title, s.body)
	}
	f.Add("", "")
	f.Add("\xff\xfe", strings.Repeat("\xe5\x90", 3000))
	f.Fuzz(func(t *testing.T, title, body string) {
		for _, b := range budgets() {
			checkFit(t, b, title, body)
		}
	})
}

func TestBudgetForUnknownVendorIsStrict(t *testing.T) {
	b := policy.BudgetFor(push.Vendor("nokia"), false)
	for _, v := range push.Vendors {
		k := policy.BudgetFor(v, false)
		if (k.TitleUnits > 0 && k.TitleUnits < b.TitleUnits) || (k.BodyUnits > 0 && k.BodyUnits < b.BodyUnits) || k.TextBytes() < b.TextBytes() {
			t.Errorf("unknown vendor budget %+v is looser than %s's %+v", b, v, k)
		}
	}
}

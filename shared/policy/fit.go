package policy

import (
	"unicode/utf8"

	"github.com/offline-push/offline-push/shared/push"
)

// Ellipsis ends every truncated text (POLICY.md rule 22). It is one UTF-16
// unit and three bytes, in JSON as in UTF-8.
const Ellipsis = "…"

// TextReserve is the part of each vendor's payload byte limit that Fit keeps
// back for everything besides title and body: the custom payload (at most
// 1 KiB as JSON, API.md §6), the message, conversation, sender and call ids
// (up to 128 bytes each), the collapse id, sound, badge, category and the
// vendor's own keys and JSON punctuation. With it, a payload that dispatch
// builds from fitted texts stays under the vendor's limit; dispatch still
// checks the final size against Budget.PayloadBytes.
const TextReserve = 2048

// Budget is what one vendor accepts for the title and body of a
// notification (VENDORS.md). Character limits are counted in UTF-16 code
// units, as the vendors' Java servers count String.length: an emoji outside
// the Basic Multilingual Plane counts 2. That is never more than a limit
// counted in code points, so either reading is respected.
type Budget struct {
	Vendor push.Vendor
	// TitleUnits and BodyUnits are the per-field limits, ellipsis included;
	// 0 means the vendor sets none and only the byte budget applies.
	TitleUnits int
	BodyUnits  int
	// PayloadBytes is the vendor's limit on the whole notification payload.
	PayloadBytes int
	// ReserveBytes is kept back from PayloadBytes for the rest of the
	// payload (TextReserve).
	ReserveBytes int
}

// TextBytes is how many bytes title and body may take together, measured
// as JSON string contents by TextSize.
func (b Budget) TextBytes() int {
	return b.PayloadBytes - b.ReserveBytes
}

// BudgetFor returns vendor v's budget; voip selects the APNs VoIP payload
// limit. The limits, from VENDORS.md:
//
//	apns    payload 4096 bytes (VoIP 5120); no per-field limit
//	fcm     payload 4096 bytes; no per-field limit
//	huawei  message body 4096 bytes; no per-field limit
//	honor   4096 bytes assumed: Honor documents no limit we could find (unverified)
//	xiaomi  title < 50, description < 128 characters
//	oppo    title ≤ 50, content ≤ 50 characters: the standard style, so
//	        dispatch need not pick the long-text style (which allows 128 but
//	        renders differently across ColorOS versions)
//	vivo    title ≤ 40, content ≤ 100 characters
//	meizu   title ≤ 32, content ≤ 100 characters
//
// Xiaomi, OPPO, vivo and Meizu document no byte limit for a notification;
// 4096 bytes is assumed for them, and their character limits bind first.
// An unknown vendor gets the strictest limits of all (title 32, body 50).
func BudgetFor(v push.Vendor, voip bool) Budget {
	b := Budget{Vendor: v, PayloadBytes: 4096, ReserveBytes: TextReserve}
	switch v {
	case push.APNs:
		if voip {
			b.PayloadBytes = 5120
		}
	case push.FCM, push.Huawei, push.Honor:
	case push.Xiaomi:
		b.TitleUnits, b.BodyUnits = 49, 127
	case push.OPPO:
		b.TitleUnits, b.BodyUnits = 50, 50
	case push.Vivo:
		b.TitleUnits, b.BodyUnits = 40, 100
	case push.Meizu:
		b.TitleUnits, b.BodyUnits = 32, 100
	default:
		b.TitleUnits, b.BodyUnits = 32, 50
	}
	return b
}

// Fit is BudgetFor(v, false).Fit(title, body): the alert texts for vendor v.
func Fit(v push.Vendor, title, body string) (string, string) {
	return BudgetFor(v, false).Fit(title, body)
}

// Fit truncates title and body to b (POLICY.md rule 22). The title keeps at
// most a quarter of the text bytes, the body gets the rest; each field keeps
// its per-field limit. A text that fits is returned unchanged; one that does
// not is cut on a character boundary, never inside a rune and, as far as can
// be told without Unicode segmentation tables, never inside an emoji ZWJ
// sequence, a flag, or before a combining mark, and ends in Ellipsis.
func (b Budget) Fit(title, body string) (string, string) {
	text := b.TextBytes()
	title = truncate(title, b.TitleUnits, text/4)
	body = truncate(body, b.BodyUnits, text-TextSize(title))
	return title, body
}

// Fits reports whether title and body are within b, as Fit leaves them, so
// dispatch can re-check texts that crossed a queue.
func (b Budget) Fits(title, body string) bool {
	t, tb := Units(title), TextSize(title)
	u, bb := Units(body), TextSize(body)
	return (b.TitleUnits <= 0 || t <= b.TitleUnits) &&
		(b.BodyUnits <= 0 || u <= b.BodyUnits) &&
		tb+bb <= b.TextBytes()
}

// Units counts s in UTF-16 code units, the way the vendors' character
// limits count.
func Units(s string) int {
	n := 0
	for _, r := range s {
		n += units(r)
	}
	return n
}

// TextSize is the number of bytes s takes inside a JSON string, quotes not
// counted, in the worst case of any JSON encoder we use: encoding/json
// escapes <, > and & as \u003c (6 bytes), as well as U+2028, U+2029, control
// characters and invalid UTF-8.
func TextSize(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		n += jsonSize(r, w)
		i += w
	}
	return n
}

func units(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// jsonSize is the encoded size of rune r, which took w bytes in the input.
func jsonSize(r rune, w int) int {
	switch {
	case r == utf8.RuneError && w == 1:
		return 6 // invalid byte, encoded as \ufffd
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < 0x20 || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029':
		return 6
	}
	return w
}

// truncate returns s if it has at most maxUnits UTF-16 units (0: no limit)
// and maxBytes JSON bytes, else its longest clean prefix that fits with
// Ellipsis appended, or "" when not even Ellipsis fits.
func truncate(s string, maxUnits, maxBytes int) string {
	u, n := 0, 0
	fits := true
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		u += units(r)
		n += jsonSize(r, w)
		i += w
		if (maxUnits > 0 && u > maxUnits) || n > maxBytes {
			fits = false
			break
		}
	}
	if fits {
		return s
	}
	const eUnits, eBytes = 1, len(Ellipsis)
	if (maxUnits > 0 && maxUnits < eUnits) || maxBytes < eBytes {
		return ""
	}
	// The longest prefix of whole runes that leaves room for the ellipsis.
	cut := 0
	u, n = 0, 0
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		u += units(r)
		n += jsonSize(r, w)
		if (maxUnits > 0 && u+eUnits > maxUnits) || n+eBytes > maxBytes {
			break
		}
		i += w
		cut = i
	}
	return s[:cleanCut(s, cut)] + Ellipsis
}

// cleanCut moves a cut at a rune boundary back until it does not split what
// a reader sees as one character: not after a zero width joiner, not before
// a mark that extends the previous character (combining marks, variation
// selectors, emoji skin tones, tag characters, the keycap), and not between
// the two regional indicators of a flag. It also drops spaces before the
// cut, so the ellipsis follows a word ("see you…", not "see you …").
func cleanCut(s string, cut int) int {
	for cut > 0 && cut < len(s) {
		next, _ := utf8.DecodeRuneInString(s[cut:])
		prev, w := utf8.DecodeLastRuneInString(s[:cut])
		switch {
		case extends(next) || prev == '\u200d' || prev == ' ':
			cut -= w
		case regional(prev) && regional(next) && oddRegionalRun(s[:cut]):
			cut -= w
		default:
			return cut
		}
	}
	return cut
}

// extends reports whether r attaches to the character before it.
func extends(r rune) bool {
	switch {
	case r == '\u200d', r == '\u20e3':
		return true
	case 0x0300 <= r && r <= 0x036f, // combining diacritical marks
		0x1ab0 <= r && r <= 0x1aff,
		0x1dc0 <= r && r <= 0x1dff,
		0x20d0 <= r && r <= 0x20ff,
		0xfe00 <= r && r <= 0xfe0f, // variation selectors
		0xfe20 <= r && r <= 0xfe2f,
		0x1f3fb <= r && r <= 0x1f3ff, // emoji skin tones
		0xe0020 <= r && r <= 0xe007f, // emoji tag sequences
		0xe0100 <= r && r <= 0xe01ef:
		return true
	}
	return false
}

func regional(r rune) bool {
	return 0x1f1e6 <= r && r <= 0x1f1ff
}

// oddRegionalRun reports whether s ends in an odd number of regional
// indicators, so that cutting there would split a flag.
func oddRegionalRun(s string) bool {
	k := 0
	for len(s) > 0 {
		r, w := utf8.DecodeLastRuneInString(s)
		if !regional(r) {
			break
		}
		k++
		s = s[:len(s)-w]
	}
	return k%2 == 1
}

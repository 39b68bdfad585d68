package xiaomi

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Xiaomi's per-field limits (VENDORS.md §6, dev.mi.com pId=1559): a title
// shorter than 50 characters and a description shorter than 128. Xiaomi's
// servers count Java String length, in UTF-16 units, so an emoji outside
// the Basic Multilingual Plane counts 2.
const (
	maxTitleUnits       = 49
	maxDescriptionUnits = 127
)

// ellipsis ends a text that had to be cut (POLICY.md rule 22).
const ellipsis = "…"

// fit returns s if it has at most max UTF-16 units, else its longest prefix
// of whole runes that leaves room for the ellipsis, with trailing spaces
// dropped, and the ellipsis. Ingest has already fitted the texts to
// Xiaomi's budget; this re-check keeps a text that crossed the queue from
// ever being refused for length, and never splits a character.
func fit(s string, max int) string {
	units := 0
	for _, r := range s {
		units += utf16Len(r)
	}
	if units <= max {
		return s
	}
	cut, used := 0, 0
	for i, r := range s {
		if used+utf16Len(r)+1 > max {
			break
		}
		used += utf16Len(r)
		cut = i + utf8.RuneLen(r)
	}
	return strings.TrimRightFunc(s[:cut], unicode.IsSpace) + ellipsis
}

func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// blank reports whether s has no visible character; Xiaomi refuses a title
// or description that is all white space.
func blank(s string) bool {
	return strings.TrimFunc(s, unicode.IsSpace) == ""
}

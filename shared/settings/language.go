package settings

import "strings"

// MaxLanguageLen bounds a language tag. RFC 5646 sets no limit, but tags
// that choose among message translations are short; the bound keeps items
// small.
const MaxLanguageLen = 64

// ValidLanguage reports whether s is a well-formed BCP 47 language tag
// (RFC 5646 §2.1 syntax, case-insensitive): language with optional extlang,
// script, region, variants, extensions and a private-use part, or a
// private-use tag on its own. It checks form, not registry membership, so a
// new subtag never needs a code change.
func ValidLanguage(s string) bool {
	if s == "" || len(s) > MaxLanguageLen {
		return false
	}
	parts := strings.Split(s, "-")
	for _, p := range parts {
		if p == "" || len(p) > 8 || !alnum(p) {
			return false
		}
	}
	i := 0
	if strings.EqualFold(parts[0], "x") {
		return privateUse(parts)
	}
	// language
	switch l := parts[0]; {
	case alpha(l) && (len(l) == 2 || len(l) == 3):
		i = 1
		// up to three extlang subtags
		for n := 0; n < 3 && i < len(parts) && len(parts[i]) == 3 && alpha(parts[i]); n++ {
			i++
		}
	case alpha(l) && len(l) >= 4:
		i = 1
	default:
		return false
	}
	// script
	if i < len(parts) && len(parts[i]) == 4 && alpha(parts[i]) {
		i++
	}
	// region
	if i < len(parts) && (len(parts[i]) == 2 && alpha(parts[i]) || len(parts[i]) == 3 && digits(parts[i])) {
		i++
	}
	// variants
	for i < len(parts) && (len(parts[i]) >= 5 || len(parts[i]) == 4 && isDigit(parts[i][0])) {
		i++
	}
	// extensions: a singleton other than x, then subtags of 2 to 8
	for i < len(parts) && len(parts[i]) == 1 && !strings.EqualFold(parts[i], "x") {
		i++
		n := 0
		for i < len(parts) && len(parts[i]) >= 2 {
			i++
			n++
		}
		if n == 0 {
			return false
		}
	}
	if i < len(parts) && strings.EqualFold(parts[i], "x") {
		return privateUse(parts[i:])
	}
	return i == len(parts)
}

// privateUse checks "x" followed by one or more subtags of 1 to 8.
func privateUse(parts []string) bool {
	return len(parts) >= 2
}

func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) && !isAlpha(s[i]) {
			return false
		}
	}
	return true
}

func alpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlpha(s[i]) {
			return false
		}
	}
	return true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

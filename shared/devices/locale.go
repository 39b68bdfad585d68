package devices

import "strings"

// validLocale reports whether s is a well-formed BCP 47 language tag
// (RFC 5646 §2.1: langtag or privateuse; the irregular grandfathered tags are
// not accepted) of at most localeMaxBytes characters. It checks syntax only:
// whether a subtag is registered does not matter for choosing a translation,
// which falls back by prefix anyway (POLICY.md rule 19).
func validLocale(s string) bool {
	if len(s) == 0 || len(s) > localeMaxBytes {
		return false
	}
	subtags := strings.Split(s, "-")
	for _, t := range subtags {
		if len(t) == 0 || len(t) > 8 || !isAlnum(t) {
			return false
		}
	}
	if strings.EqualFold(subtags[0], "x") {
		return len(subtags) > 1 // privateuse: "x" 1*("-" 1*8alphanum)
	}
	i := 0
	// language: 2*3ALPHA ["-" extlang] / 4ALPHA / 5*8ALPHA
	lang := subtags[i]
	if len(lang) < 2 || !isAlpha(lang) {
		return false
	}
	i++
	if len(lang) <= 3 {
		// extlang: up to three 3ALPHA subtags.
		for n := 0; n < 3 && i < len(subtags) && len(subtags[i]) == 3 && isAlpha(subtags[i]); n++ {
			i++
		}
	}
	// script: 4ALPHA
	if i < len(subtags) && len(subtags[i]) == 4 && isAlpha(subtags[i]) {
		i++
	}
	// region: 2ALPHA / 3DIGIT
	if i < len(subtags) && (len(subtags[i]) == 2 && isAlpha(subtags[i]) || len(subtags[i]) == 3 && isDigits(subtags[i])) {
		i++
	}
	// variants: 5*8alphanum / (DIGIT 3alphanum)
	for i < len(subtags) && (len(subtags[i]) >= 5 || len(subtags[i]) == 4 && isDigits(subtags[i][:1])) {
		i++
	}
	// extensions: singleton 1*("-" (2*8alphanum)), singleton not "x"
	for i < len(subtags) && len(subtags[i]) == 1 && !strings.EqualFold(subtags[i], "x") {
		i++
		n := 0
		for i < len(subtags) && len(subtags[i]) >= 2 {
			i++
			n++
		}
		if n == 0 {
			return false
		}
	}
	// privateuse: "x" 1*("-" 1*8alphanum)
	if i < len(subtags) && strings.EqualFold(subtags[i], "x") {
		return i+1 < len(subtags)
	}
	return i == len(subtags)
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

package push

// ValidApp reports whether s is an app id: ^[a-z0-9][a-z0-9-]{0,63}$.
func ValidApp(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0:
		default:
			return false
		}
	}
	return true
}

// ValidID reports whether s is a user, device, conversation, call or message
// id: ^[A-Za-z0-9_.@:+=~-]{1,128}$.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '.', c == '@', c == ':', c == '+', c == '=', c == '~', c == '-':
		default:
			return false
		}
	}
	return true
}

// Redact returns the last 6 characters of a token, the only part of a token
// that may appear in a response or a log line.
func Redact(token string) string {
	if len(token) <= 6 {
		return token
	}
	return token[len(token)-6:]
}

package fcmemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// The token endpoint implements Google's OAuth 2.0 server-to-server flow
// (RFC 7523 JWT bearer grant) as documented for service accounts: the
// client posts grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer and
// assertion=<JWT>, where the JWT is RS256-signed with the service account's
// private key and carries iss (client_email), scope (space-separated), aud
// (the token URI), iat and exp (at most one hour apart).

const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// sendScopes are the OAuth scopes that allow messages:send.
var sendScopes = []string{
	"https://www.googleapis.com/auth/firebase.messaging",
	"https://www.googleapis.com/auth/cloud-platform",
}

// clockSkew is how far a JWT's iat may lie in the emulator's future.
const clockSkew = time.Minute

// keyRef is a service account's verification key and, when known, its
// private_key_id, which a JWT's kid header must then match.
type keyRef struct {
	pub *rsa.PublicKey
	id  string
}

// oauthError is an RFC 6749 error answer.
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.counts.TokenRequests++
	s.mu.Unlock()
	if r.Method != http.MethodPost {
		writeOAuthError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	if g := r.PostForm.Get("grant_type"); g != jwtBearerGrant {
		writeOAuthError(w, http.StatusBadRequest, "unsupported_grant_type", "Invalid grant_type: "+g)
		return
	}
	acct, email, canSend, oerr := s.verifyAssertion(r.PostForm.Get("assertion"))
	if oerr != nil {
		writeOAuthError(w, http.StatusBadRequest, oerr.Code, oerr.Description)
		return
	}
	token := "ya29.emu-" + rand.Text() + rand.Text()
	s.mu.Lock()
	s.tokens[token] = issued{email: email, project: acct.project, expires: s.now().Add(s.lifetime), canSend: canSend}
	s.counts.TokensIssued++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": token,
		"expires_in":   int(s.lifetime / time.Second),
		"token_type":   "Bearer",
	})
}

// verifyAssertion checks a JWT-bearer assertion and returns the service
// account that signed it and whether its scopes allow sending.
func (s *Server) verifyAssertion(assertion string) (account, string, bool, *oauthError) {
	invalid := func(desc string) (account, string, bool, *oauthError) {
		return account{}, "", false, &oauthError{Code: "invalid_grant", Description: desc}
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return invalid("Invalid JWT: assertion is not a signed JWT")
	}
	var header struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return invalid("Invalid JWT: malformed header")
	}
	if header.Alg != "RS256" {
		return invalid("Invalid JWT: alg must be RS256, got " + header.Alg)
	}
	var claims struct {
		Iss   string `json:"iss"`
		Sub   string `json:"sub"`
		Scope string `json:"scope"`
		Aud   string `json:"aud"`
		Iat   *int64 `json:"iat"`
		Exp   *int64 `json:"exp"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return invalid("Invalid JWT: malformed claim set")
	}
	s.mu.Lock()
	acct, ok := s.accounts[claims.Iss]
	s.mu.Unlock()
	if !ok {
		return invalid("Invalid grant: account not found")
	}
	if acct.key.id != "" && header.Kid != "" && header.Kid != acct.key.id {
		return invalid("Invalid JWT Signature.")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return invalid("Invalid JWT Signature.")
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(acct.key.pub, crypto.SHA256, sum[:], sig); err != nil {
		return invalid("Invalid JWT Signature.")
	}
	if claims.Aud != s.TokenURI() {
		return invalid("Invalid JWT audience: " + claims.Aud)
	}
	const timeframe = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim."
	if claims.Iat == nil || claims.Exp == nil {
		return invalid(timeframe)
	}
	iat, exp, now := time.Unix(*claims.Iat, 0), time.Unix(*claims.Exp, 0), s.now()
	if iat.After(now.Add(clockSkew)) || !exp.After(now) || exp.Before(iat) || exp.Sub(iat) > time.Hour {
		return invalid(timeframe)
	}
	if claims.Sub != "" && claims.Sub != claims.Iss {
		return account{}, "", false, &oauthError{Code: "unauthorized_client", Description: "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}
	}
	scopes := strings.Fields(claims.Scope)
	if len(scopes) == 0 {
		return account{}, "", false, &oauthError{Code: "invalid_scope", Description: "Empty or missing scope not allowed."}
	}
	canSend := false
	for _, sc := range scopes {
		for _, want := range sendScopes {
			canSend = canSend || sc == want
		}
	}
	return acct, claims.Iss, canSend, nil
}

// decodeSegment decodes one base64url JWT segment as JSON.
func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func writeOAuthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(oauthError{Code: code, Description: desc})
}

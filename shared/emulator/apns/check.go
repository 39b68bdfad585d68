package apnsemu

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Payload limits, in bytes (VENDORS.md §1).
const (
	maxPayload     = 4096
	maxVoIPPayload = 5120
	maxCollapseID  = 64
	// tokenLifetime is how long Apple honours a provider token after its iat.
	tokenLifetime = time.Hour
	// futureSkew is how far in the future an iat may lie before the token is
	// refused: a little clock skew between provider and Apple is normal.
	futureSkew = time.Minute
)

// topicSuffixes maps each push type to what its apns-topic appends to the
// bundle id. Types absent here use the bundle id itself.
var topicSuffixes = map[string]string{
	"voip":         ".voip",
	"complication": ".complication",
	"fileprovider": ".pushkit.fileprovider",
	"location":     ".location-query",
	"liveactivity": ".push-type.liveactivity",
	"pushtotalk":   ".voip-ptt",
}

// pushTypes are the apns-push-type values Apple documents.
var pushTypes = map[string]bool{
	"alert": true, "background": true, "location": true, "voip": true, "complication": true,
	"fileprovider": true, "mdm": true, "liveactivity": true, "pushtotalk": true,
}

// checkedHeaders may appear at most once in a request (400 DuplicateHeaders).
var checkedHeaders = []string{"authorization", "apns-topic", "apns-push-type", "apns-priority",
	"apns-expiration", "apns-collapse-id", "apns-id"}

func reject(status int, reason string) *rejection { return &rejection{status, reason} }

// check judges a request as APNs would and returns the push it carries, or
// the first rule it breaks.
func (s *Server) check(r *http.Request) (*Push, *rejection) {
	if r.ProtoMajor != 2 {
		// APNs speaks HTTP/2 only. Go's TLS server lets a client that
		// offers nothing but http/1.1 through ALPN, so refuse it here; Apple
		// documents no reason for it.
		return nil, reject(http.StatusHTTPVersionNotSupported, "HTTP2Required")
	}
	if r.Method != http.MethodPost {
		return nil, reject(http.StatusMethodNotAllowed, "MethodNotAllowed")
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	switch {
	case !ok && r.URL.Path == "/3/device":
		return nil, reject(http.StatusBadRequest, "MissingDeviceToken")
	case !ok || strings.Contains(token, "/"):
		return nil, reject(http.StatusNotFound, "BadPath")
	case token == "":
		return nil, reject(http.StatusBadRequest, "MissingDeviceToken")
	}
	for _, h := range checkedHeaders {
		if len(r.Header.Values(h)) > 1 {
			return nil, reject(http.StatusBadRequest, "DuplicateHeaders")
		}
	}
	p := &Push{Token: strings.ToLower(token), Proto: r.Proto, Header: r.Header.Clone(), Received: s.opts.Now()}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		// The handshake verified the certificate against ClientCAs.
		p.Auth = "certificate"
	} else if rej := s.checkProviderToken(r.Header.Get("authorization"), p); rej != nil {
		return nil, rej
	}

	p.Topic = r.Header.Get("apns-topic")
	p.PushType = r.Header.Get("apns-push-type")
	if p.PushType == "" {
		p.PushType = "alert" // APNs assumes alert when the header is absent
	}
	if p.Topic == "" {
		return nil, reject(http.StatusBadRequest, "MissingTopic")
	}
	if !pushTypes[p.PushType] {
		return nil, reject(http.StatusBadRequest, "InvalidPushType")
	}
	if rej := s.checkTopic(p.Topic, p.PushType); rej != nil {
		return nil, rej
	}

	p.Priority = 10 // APNs assumes 10 when the header is absent
	if v := r.Header.Get("apns-priority"); v != "" {
		switch v {
		case "10", "5", "1":
			p.Priority, _ = strconv.Atoi(v)
		default:
			return nil, reject(http.StatusBadRequest, "BadPriority")
		}
	}
	if p.PushType == "background" && p.Priority == 10 {
		return nil, reject(http.StatusBadRequest, "BadPriority")
	}
	if v := r.Header.Get("apns-expiration"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || !allDigits(v) {
			return nil, reject(http.StatusBadRequest, "BadExpirationDate")
		}
		p.Expiration, p.ExpirationSet = n, true
	}
	p.CollapseID = r.Header.Get("apns-collapse-id")
	if len(p.CollapseID) > maxCollapseID {
		return nil, reject(http.StatusBadRequest, "BadCollapseId")
	}
	if v := r.Header.Get("apns-id"); v != "" && !isUUID(v) {
		return nil, reject(http.StatusBadRequest, "BadMessageId")
	}
	if !validDeviceToken(token) {
		return nil, reject(http.StatusBadRequest, "BadDeviceToken")
	}

	limit := maxPayload
	if p.PushType == "voip" {
		limit = maxVoIPPayload
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		// The client went away mid-body; it reads no answer.
		return nil, reject(http.StatusBadRequest, "PayloadEmpty")
	}
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return nil, reject(http.StatusBadRequest, "PayloadEmpty")
	case len(body) > limit:
		return nil, reject(http.StatusRequestEntityTooLarge, "PayloadTooLarge")
	}
	if rej := checkPayload(body, p.PushType); rej != nil {
		return nil, rej
	}
	p.Payload = json.RawMessage(body)
	return p, nil
}

// checkTopic requires topic to be an allowed bundle id with the suffix of
// pushType. A topic of an allowed bundle with another type's suffix (a VoIP
// topic on an alert, say) is DeviceTokenNotForTopic, as APNs answers when a
// token meets a topic it was not issued for; a topic of no allowed bundle
// is BadTopic.
func (s *Server) checkTopic(topic, pushType string) *rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	suffix := topicSuffixes[pushType]
	if base, ok := strings.CutSuffix(topic, suffix); ok && s.topics[base] {
		return nil
	}
	if s.topics[topic] {
		return reject(http.StatusBadRequest, "DeviceTokenNotForTopic")
	}
	for _, suf := range topicSuffixes {
		if base, ok := strings.CutSuffix(topic, suf); ok && s.topics[base] {
			return reject(http.StatusBadRequest, "DeviceTokenNotForTopic")
		}
	}
	return reject(http.StatusBadRequest, "BadTopic")
}

// checkPayload requires a JSON object. Alert and background pushes must
// carry an "aps" dictionary; other types (VoIP above all) may leave it out,
// since the app reads the whole payload itself. Apple documents no reason
// for a body that is not JSON; the emulator answers BadPayload.
func checkPayload(body []byte, pushType string) *rejection {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return reject(http.StatusBadRequest, "BadPayload")
	}
	aps, ok := doc["aps"]
	if !ok {
		if pushType == "alert" || pushType == "background" {
			return reject(http.StatusBadRequest, "BadPayload")
		}
		return nil
	}
	var dict map[string]json.RawMessage
	if err := json.Unmarshal(aps, &dict); err != nil || dict == nil {
		return reject(http.StatusBadRequest, "BadPayload")
	}
	return nil
}

// checkProviderToken verifies an "authorization: bearer <JWT>" header as
// Apple documents: ES256 over the key named by kid, iss the key's team,
// iat within the last hour.
func (s *Server) checkProviderToken(header string, p *Push) *rejection {
	if header == "" {
		return reject(http.StatusForbidden, "MissingProviderToken")
	}
	scheme, jwt, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return reject(http.StatusForbidden, "InvalidProviderToken")
	}
	invalid := reject(http.StatusForbidden, "InvalidProviderToken")
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return invalid
	}
	var head struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss string      `json:"iss"`
		Iat json.Number `json:"iat"`
	}
	if !decodeSegment(parts[0], &head) || !decodeSegment(parts[1], &claims) {
		return invalid
	}
	if head.Alg != "ES256" || head.Kid == "" || claims.Iss == "" {
		return invalid
	}
	iat, err := claims.Iat.Int64()
	if err != nil {
		return invalid
	}
	s.mu.Lock()
	k, known := s.keys[head.Kid]
	_, verified := s.verified[jwt]
	s.mu.Unlock()
	if !known || k.team != claims.Iss {
		return invalid
	}
	if !verified {
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(sig) != 64 {
			return invalid
		}
		digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
		rr, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		if !ecdsa.Verify(k.pub, digest[:], rr, ss) {
			return invalid
		}
		s.rememberVerified(jwt)
	}
	now := s.opts.Now()
	issued := time.Unix(iat, 0)
	switch {
	case issued.After(now.Add(futureSkew)):
		return invalid
	case now.Sub(issued) > tokenLifetime:
		return reject(http.StatusForbidden, "ExpiredProviderToken")
	}
	if rej := s.noteTokenUpdate(claims.Iss, iat); rej != nil {
		return rej
	}
	p.Auth, p.TeamID, p.KeyID, p.IssuedAt, p.Bearer = "token", claims.Iss, head.Kid, issued, jwt
	return nil
}

// maxVerified bounds the remembered signatures; providers reuse one token
// for most of an hour, so a handful is the working set.
const maxVerified = 1024

// rememberVerified notes that jwt's signature verified, so that the
// emulator, like APNs, checks a reused token's signature once rather than
// on every push; its age is still judged on every push.
func (s *Server) rememberVerified(jwt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.verified) >= maxVerified {
		clear(s.verified)
	}
	s.verified[jwt] = struct{}{}
}

// noteTokenUpdate enforces MinTokenInterval: a team's token newer than the
// newest it used must be at least that much newer.
func (s *Server) noteTokenUpdate(team string, iat int64) *rejection {
	s.mu.Lock()
	defer s.mu.Unlock()
	newest, seen := s.newestIat[team]
	if seen && iat <= newest {
		return nil
	}
	if seen && s.opts.MinTokenInterval > 0 && time.Duration(iat-newest)*time.Second < s.opts.MinTokenInterval {
		return reject(http.StatusTooManyRequests, "TooManyProviderTokenUpdates")
	}
	s.newestIat[team] = iat
	return nil
}

// decodeSegment decodes one base64url (unpadded) JSON segment of a JWT.
func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v) == nil
}

// validDeviceToken reports whether token is an APNs device token: an even
// number of 64 to 200 hex digits.
func validDeviceToken(token string) bool {
	if len(token) < 64 || len(token) > 200 || len(token)%2 != 0 {
		return false
	}
	for i := 0; i < len(token); i++ {
		if !isHex(token[i]) {
			return false
		}
	}
	return true
}

// isUUID reports whether s is a UUID in canonical 8-4-4-4-12 form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

package testenv

import (
	"encoding/json"
	"net/http"
	"slices"
)

// X-Amz-Target prefixes of the services whose error shapes the proxy
// imitates. Any other JSON service gets the generic shape.
const (
	serviceDynamoDB = "DynamoDB_20120810"
	serviceStreams  = "DynamoDBStreams_20120810"
	serviceSQS      = "AmazonSQS"
)

// writeThrottle answers with the throttling error of the service, in the
// shape its SDK client turns into a retryable throttle: DynamoDB's
// ThrottlingException, SQS's RequestThrottled (named again in the
// x-amzn-query-error header, which the SDK reads for SQS since its move from
// the query protocol to JSON), and ThrottlingException for the others, such
// as Secrets Manager.
func writeThrottle(w http.ResponseWriter, service string) {
	code := "ThrottlingException"
	if service == serviceSQS {
		code = "RequestThrottled"
	}
	writeError(w, service, http.StatusBadRequest, code, "Sender", "testenv proxy: injected throttling")
}

// writeError answers with an AWS JSON protocol error: the code in __type
// (namespaced as the service does), the message, and for SQS the
// x-amzn-query-error header with the fault ("Sender" or "Receiver").
func writeError(w http.ResponseWriter, service string, status int, code, fault, message string) {
	typ := code
	switch service {
	case serviceDynamoDB, serviceStreams:
		typ = "com.amazonaws.dynamodb.v20120810#" + code
	case serviceSQS:
		typ = "com.amazonaws.sqs#" + code
		w.Header().Set("X-Amzn-Query-Error", code+";"+fault)
	}
	writeJSON(w, status, service, map[string]string{"__type": typ, "message": message})
}

// writeJSON answers with v in the JSON protocol version the service speaks.
func writeJSON(w http.ResponseWriter, status int, service string, v any) {
	contentType := "application/x-amz-json-1.1"
	switch service {
	case serviceDynamoDB, serviceStreams, serviceSQS:
		contentType = "application/x-amz-json-1.0"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("X-Amzn-RequestId", "testenv-proxy")
	w.WriteHeader(status)
	w.Write(mustMarshal(v))
}

// hopHeaders belong to one connection, not to the request or answer, and
// Content-Length is recomputed since the proxy may rewrite bodies.
var hopHeaders = map[string]bool{
	"Connection":          true,
	"Content-Length":      true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Proxy-Connection":    true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// copyHeader adds the end-to-end headers of src to dst.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if hopHeaders[http.CanonicalHeaderKey(k)] {
			continue
		}
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// keepOne unchooses the first element if all were chosen, so that a batch
// call always makes progress, as DynamoDB's do.
func keepOne(chosen []bool) {
	if len(chosen) > 0 && !slices.Contains(chosen, false) {
		chosen[0] = false
	}
}

// withKeys returns a copy of a KeysAndAttributes object with other Keys.
func withKeys(kaa map[string]json.RawMessage, keys []json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(kaa))
	for k, v := range kaa {
		out[k] = v
	}
	out["Keys"] = mustMarshal(keys)
	return out
}

// mergeUnprocessedKeys adds the withheld keys to the UnprocessedKeys the
// target returned (moto returns none, but the merge stays correct if it
// ever does).
func mergeUnprocessedKeys(existing json.RawMessage, withheld map[string]map[string]json.RawMessage) json.RawMessage {
	var merged map[string]map[string]json.RawMessage
	json.Unmarshal(existing, &merged)
	if merged == nil {
		merged = map[string]map[string]json.RawMessage{}
	}
	for table, kaa := range withheld {
		prev, ok := merged[table]
		if !ok {
			merged[table] = kaa
			continue
		}
		var a, b []json.RawMessage
		json.Unmarshal(prev["Keys"], &a)
		json.Unmarshal(kaa["Keys"], &b)
		merged[table] = withKeys(prev, append(a, b...))
	}
	return mustMarshal(merged)
}

// sortedKeys returns the keys of m in order, so that faults are drawn in the
// same order for the same request.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// mustMarshal encodes values built from decoded JSON, which cannot fail.
func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("testenv proxy: re-encoding decoded JSON: " + err.Error())
	}
	return b
}

package httpapi

// Route is one entry of the public route table (API.md). The table is the
// single list that the router, the template, the local stack and
// openapi.yaml must agree on; tests check each of them against it.
type Route struct {
	Name     string // handler key, e.g. "PutDevice"
	Method   string // upper case
	Pattern  string // path with {param} segments, e.g. "/v1/apps/{app}/users/{user}/devices"
	Function string // the function serving it: "devices", "settings", "ingest"
	MaxBody  int64  // body limit in bytes (API.md §1); larger bodies answer 413
	Public   bool   // true only for GET /v1/health: no signature required
}

const (
	kib = 1 << 10
	mib = 1 << 20
)

// Routes is the whole route table. Later issues add rows; nothing else needs
// to change for a new route to be matched, limited and authenticated.
var Routes = []Route{
	{Name: "Health", Method: "GET", Pattern: "/v1/health", Function: "devices", MaxBody: 64 * kib, Public: true},
	{Name: "PutDevice", Method: "PUT", Pattern: "/v1/apps/{app}/users/{user}/devices/{device}", Function: "devices", MaxBody: 64 * kib},
	{Name: "DeleteDevice", Method: "DELETE", Pattern: "/v1/apps/{app}/users/{user}/devices/{device}", Function: "devices", MaxBody: 64 * kib},
	{Name: "ListDevices", Method: "GET", Pattern: "/v1/apps/{app}/users/{user}/devices", Function: "devices", MaxBody: 64 * kib},

	{Name: "PutPresence", Method: "PUT", Pattern: "/v1/apps/{app}/users/{user}/devices/{device}/presence", Function: "devices", MaxBody: 64 * kib},
	{Name: "PresenceBatch", Method: "POST", Pattern: "/v1/apps/{app}/presence/batch", Function: "devices", MaxBody: 256 * kib},
	{Name: "PutBadge", Method: "PUT", Pattern: "/v1/apps/{app}/users/{user}/badge", Function: "devices", MaxBody: 64 * kib},

	{Name: "GetSettings", Method: "GET", Pattern: "/v1/apps/{app}/users/{user}/settings", Function: "settings", MaxBody: 64 * kib},
	{Name: "PatchSettings", Method: "PATCH", Pattern: "/v1/apps/{app}/users/{user}/settings", Function: "settings", MaxBody: 64 * kib},
	{Name: "GetConversationSettings", Method: "GET", Pattern: "/v1/apps/{app}/users/{user}/conversations/{type}/{conversation}/settings", Function: "settings", MaxBody: 64 * kib},
	{Name: "PatchConversationSettings", Method: "PATCH", Pattern: "/v1/apps/{app}/users/{user}/conversations/{type}/{conversation}/settings", Function: "settings", MaxBody: 64 * kib},
	{Name: "DeleteConversationSettings", Method: "DELETE", Pattern: "/v1/apps/{app}/users/{user}/conversations/{type}/{conversation}/settings", Function: "settings", MaxBody: 64 * kib},
	{Name: "BatchGetConversationSettings", Method: "POST", Pattern: "/v1/apps/{app}/users/{user}/conversations/batch-get", Function: "settings", MaxBody: 64 * kib},

	{Name: "PostMessage", Method: "POST", Pattern: "/v1/apps/{app}/messages", Function: "ingest", MaxBody: 5 * mib},
}

package dynamo

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"strconv"

	"github.com/offline-push/offline-push/shared/push"
)

// Attribute and index names shared by every store.
const (
	attrPK      = "pk"
	attrSK      = "sk"
	attrTTL     = "ttl"
	attrShard   = "xs"
	attrExpiry  = "xu"
	expiryIndex = "ExpiryIndex"

	skProfile  = "profile"
	skPresence = "presence"
	skCall     = "call"
	skBadge    = "badge"
	skOwner    = "owner"

	devicePrefix   = "d#"
	presencePrefix = "p#"
)

// Shards is the number of partitions of ExpiryIndex per record kind. Sixteen
// keeps any one index partition far below DynamoDB's per-partition limits at
// the write rates a large IM platform produces.
const Shards = 16

func userPK(app, user string) string { return "u#" + app + "#" + user }

func convSK(typ, id string) string { return "conv#" + typ + "#" + id }

func tokenPK(app string, v push.Vendor, token string) string {
	sum := sha256.Sum256([]byte(token))
	return "t#" + app + "#" + string(v) + "#" + hex.EncodeToString(sum[:])
}

func noncePK(app, nonce string) string { return "n#" + app + "#" + nonce }

func messagePK(app, messageID string) string { return "m#" + app + "#" + messageID }

// shard spreads index entries of one kind over Shards partitions, stably by key.
func shard(kind, pk string) string {
	h := fnv.New32a()
	h.Write([]byte(pk))
	return kind + "#" + strconv.Itoa(int(h.Sum32()%Shards))
}

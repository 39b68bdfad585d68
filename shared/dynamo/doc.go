// Package dynamo is the DynamoDB adapter: the key schema, the item codecs and
// the stores that use cases consume. It imports the AWS SDK and push, never a
// use case.
//
// # Tables
//
// StateTable (pk S, sk S; TTL attribute "ttl", epoch seconds) holds everything
// that lives as long as a user does. Ingest reads a recipient with at most
// four keys, all under pk "u#{app}#{user}":
//
//	sk "profile"               device bindings ("d#{deviceId}" maps) and the
//	                           app-level settings (rt, dw, du, lang, sp, mdp, mpd)
//	sk "presence"              device leases ("p#{deviceId}" maps {e, u, pl}),
//	                           one small item so a heartbeat is one write < 1 KB
//	sk "conv#{type}#{id}"      a conversation's own setting (rt, du)
//	sk "call"                  the callee's current call (call types only)
//
// Further items:
//
//	pk "u#{app}#{user}"  sk "badge"   the badge counter, never read at ingest
//	pk "t#{app}#{vendor}#{sha256(token)}" sk "owner"
//	                           the token index: who holds a token (one-owner
//	                           rule). The token is hashed because FCM tokens
//	                           reach 4096 bytes and a key may hold 2048.
//
// ExpiryIndex (GSI, partition "xs" S, sort "xu" N, keys only) is sparse: an
// item appears only while it carries xs. Items with a DND duration carry
// xs "dnd#{shard}" and xu = the until instant (ms); token index items carry
// xs "tok#{shard}" and xu = the refresh instant (ms). Cleanup queries each
// shard for xu below a bound, so its cost grows with the expired records and
// not with the table.
//
// RequestTable (pk S; TTL "ttl") holds short-lived request records: spent
// nonces ("n#{app}#{nonce}") and idempotency records ("m#{app}#{messageId}").
package dynamo

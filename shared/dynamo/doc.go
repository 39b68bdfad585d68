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
// # Attribute layout (short names: every byte is billed on every write)
//
// Profile device binding, attribute "d#{deviceId}", a map:
//
//	t  token (APNs: lower-case hex)     v  VoIP token (APNs only, optional)
//	vn vendor                           c  certName
//	pl platform                         e  environment (APNs only)
//	l  locale (optional)                av appVersion (optional)
//	r  registeredAt, epoch ms
//
// Profile app-level settings, top-level attributes, each absent when unset
// (absent reads as the default):
//
//	rt  remindType (S)                  dw  DND window map {s N, e N (minutes), z S (zone)}
//	du  DND until, epoch ms (N)         lang language (S)
//	sp  showPreview (BOOL)              mdp multiDevicePolicy (S)
//	mpd mobilePushWhenDesktopOnline (BOOL)
//	xs/xu  present exactly while du is set ("dnd#{shard}", du)
//
// Conversation item: rt, du, and xs/xu as above. An item left with neither rt
// nor du is deleted.
//
// Presence lease, attribute "p#{deviceId}", a map {e N epoch, u N until ms
// (0 when offline), pl S platform}; item "ttl" = last applied write + 8 days
// (a week after the longest lease), since one update cannot take a maximum.
//
// Token index item: tok (the token), uid, did (owner), k ("alert" | "voip"),
// vn (vendor), r (refresh instant ms = the last PUT), xs "tok#{shard}", xu = r.
//
// Badge item: c N, the absolute count; slots m0…m7 / n0…n7 remember the
// last message ids counted and their counts, so a retried dispatch or a
// second vendor reuses the count instead of counting a message twice.
//
// Call item: the callee's current call (id, accepted and expiry instants,
// cancelled flag, the devices the invite went to) and per-device invite
// marks "iv#{deviceId}" (sending, sent) that tell a cancel whether the
// invite reached the device.
//
// RequestTable (pk S; TTL "ttl") holds short-lived records: spent nonces
// ("n#{app}#{nonce}"), idempotency records ("m#{app}#{messageId}"), and vendor
// access tokens shared by every dispatch container ("k#{key}", ttl = expiry).
package dynamo

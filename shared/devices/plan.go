package devices

import (
	"slices"
	"strings"
	"time"

	"github.com/offline-push/offline-push/shared/push"
)

// TokenRef names one token index entry within an app: the owner key
// (app, vendor, token) without the app.
type TokenRef struct {
	Vendor push.Vendor
	Token  string
}

// IndexEntry is the token index's answer to "who holds this token".
type IndexEntry struct {
	Owner     push.Owner
	Kind      push.TokenKind
	Refreshed time.Time // the last PUT that registered the token
}

// Snapshot is what the planner knows of the table: the device bindings of
// some users and the index entries of some tokens, each as last read.
type Snapshot struct {
	// Profiles maps a user to its bindings by device id. A user that was
	// read but has no profile maps to an empty (or nil) map; a user not
	// read is absent.
	Profiles map[string]map[string]push.Binding
	// Index maps a token to its entry; a nil entry means the token was
	// read and nobody holds it, an absent key that it was not read.
	Index map[TokenRef]*IndexEntry
}

// Held is what a device held when its profile was read: a binding with that
// alert token and VoIP token, or none (Bound false). A write is applied only
// while the device still holds exactly that.
type Held struct {
	DeviceID  string
	Bound     bool
	Token     string
	VoIPToken string
}

// ProfileWrite is every change to one user's profile item, merged into one
// write because a transaction may touch an item only once. A ProfileWrite
// that sets and removes nothing is a pure condition check.
type ProfileWrite struct {
	UserID     string
	Expect     []Held         // conditions, by device id
	Set        []push.Binding // bindings written whole
	Remove     []string       // devices whose binding is removed
	RemoveVoIP []string       // devices that keep their binding but lose its VoIP token
}

// IndexWrite is the change to one token index item. Expect is the entry as
// read (nil: absent); Put writes an entry, Delete removes it, and neither
// makes the write a pure condition check.
type IndexWrite struct {
	Ref    TokenRef
	Expect *IndexEntry
	Put    *IndexEntry
	Delete bool
}

// Plan is one atomic change of bindings and token index, conditioned on the
// snapshot it was computed from. The store applies it as one transaction or
// not at all.
type Plan struct {
	Profiles []ProfileWrite
	Index    []IndexWrite
}

// Empty reports whether the plan writes and checks nothing.
func (p Plan) Empty() bool { return len(p.Profiles) == 0 && len(p.Index) == 0 }

// intent is the change a request asks for: bind the device to binding, or
// unbind it when binding is nil.
type intent struct {
	user    string
	device  string
	binding *push.Binding
}

func (in intent) self() push.Owner { return push.Owner{UserID: in.user, DeviceID: in.device} }

// newTokens lists the tokens the intent registers, alert token first.
func (in intent) newTokens() []TokenRef {
	if in.binding == nil {
		return nil
	}
	refs := []TokenRef{{in.binding.Vendor, in.binding.Token}}
	if in.binding.VoIPToken != "" {
		refs = append(refs, TokenRef{push.APNs, in.binding.VoIPToken})
	}
	return refs
}

// heldTokens lists the tokens a binding holds, alert token first.
func heldTokens(b push.Binding) []TokenRef {
	refs := []TokenRef{{b.Vendor, b.Token}}
	if b.VoIPToken != "" {
		refs = append(refs, TokenRef{push.APNs, b.VoIPToken})
	}
	return refs
}

// kindOf tells which of b's tokens ref is, or "" when b does not hold it.
func kindOf(b push.Binding, ref TokenRef) push.TokenKind {
	switch {
	case b.Vendor == ref.Vendor && b.Token == ref.Token:
		return push.TokenAlert
	case ref.Vendor == push.APNs && b.VoIPToken != "" && b.VoIPToken == ref.Token:
		return push.TokenVoIP
	}
	return ""
}

// missing returns the users and tokens the planner still needs to read for
// in. Reading proceeds in rounds: the registering user's profile and the new
// tokens' index entries first; then the holders those entries name and the
// tokens the device gives up; then the VoIP token of a holder that loses its
// whole binding. Each round asks only for what the previous one revealed.
func missing(s Snapshot, in intent) (users []string, tokens []TokenRef) {
	needUser := func(u string) {
		if _, ok := s.Profiles[u]; !ok && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	needToken := func(r TokenRef) {
		if _, ok := s.Index[r]; !ok && !slices.Contains(tokens, r) {
			tokens = append(tokens, r)
		}
	}
	needUser(in.user)
	for _, r := range in.newTokens() {
		needToken(r)
	}
	if prof, ok := s.Profiles[in.user]; ok {
		if cur, ok := prof[in.device]; ok {
			for _, r := range heldTokens(cur) {
				needToken(r)
			}
		}
	}
	for _, r := range in.newTokens() {
		e, ok := s.Index[r]
		if !ok || e == nil || e.Owner == in.self() {
			continue
		}
		needUser(e.Owner.UserID)
		prof, ok := s.Profiles[e.Owner.UserID]
		if !ok {
			continue
		}
		if old, ok := prof[e.Owner.DeviceID]; ok && kindOf(old, r) == push.TokenAlert {
			for _, t := range heldTokens(old) {
				needToken(t)
			}
		}
	}
	return users, tokens
}

// plan computes the writes that carry out in against s, which must hold
// everything missing asks for, and the previous holder of the registered
// token (else of its VoIP token) when one loses it. Its rules:
//
//   - A token held elsewhere moves: a holder whose alert token it is loses
//     its whole binding (and so its VoIP token), a holder whose VoIP token it
//     is loses only that.
//   - Every new token's index entry is written (which refreshes r and xu even
//     when nothing moves); an entry of a token nobody holds any more is
//     deleted, if it still names the device that gave the token up.
//   - Every item read and relied on is conditioned on what was read, so the
//     plan applies only to the state it was computed from.
func plan(s Snapshot, in intent, now time.Time) (Plan, *push.Owner) {
	type devKey = push.Owner
	before := map[devKey]push.Binding{} // examined bindings as read
	examined := map[devKey]bool{}
	examine := func(o devKey) {
		if examined[o] {
			return
		}
		examined[o] = true
		if b, ok := s.Profiles[o.UserID][o.DeviceID]; ok {
			before[o] = b
		}
	}
	self := in.self()
	examine(self)
	for _, r := range in.newTokens() {
		if e := s.Index[r]; e != nil && e.Owner != self {
			examine(e.Owner)
		}
	}

	// after starts as before and takes the changes; removed devices are
	// deleted from it, devices losing their VoIP token keep the rest.
	after := make(map[devKey]push.Binding, len(before))
	for k, b := range before {
		after[k] = b
	}
	var moved *push.Owner
	for _, r := range in.newTokens() {
		e := s.Index[r]
		if e == nil || e.Owner == self {
			continue
		}
		old, ok := after[e.Owner]
		if !ok {
			continue // the index names a device that no longer holds it
		}
		switch kindOf(old, r) {
		case push.TokenAlert:
			delete(after, e.Owner)
		case push.TokenVoIP:
			old.VoIPToken = ""
			after[e.Owner] = old
		default:
			continue
		}
		if moved == nil {
			o := e.Owner
			moved = &o
		}
	}
	if in.binding != nil {
		after[self] = *in.binding
	} else {
		delete(after, self)
	}

	var p Plan
	p.Profiles = profileWrites(before, after, examined)

	// Index: tokens registered now, and tokens examined devices held before.
	var refs []TokenRef
	addRef := func(r TokenRef) {
		if !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
	}
	for _, r := range in.newTokens() {
		addRef(r)
	}
	for _, o := range sortedOwners(before) {
		for _, r := range heldTokens(before[o]) {
			addRef(r)
		}
	}
	newTokens := in.newTokens()
	for _, r := range refs {
		e := s.Index[r]
		if i := slices.Index(newTokens, r); i >= 0 {
			kind := push.TokenAlert
			if i == 1 {
				kind = push.TokenVoIP
			}
			p.Index = append(p.Index, IndexWrite{
				Ref: r, Expect: e,
				Put: &IndexEntry{Owner: self, Kind: kind, Refreshed: now},
			})
			continue
		}
		if holderOf(after, r) != nil {
			continue // still held by the same device, which keeps its entry
		}
		// Nobody holds r any more. Its entry goes if it names a device that
		// gave r up; an entry naming anyone else is not ours to touch, but
		// was relied on, so it is checked.
		switch {
		case e == nil:
		case examined[e.Owner] && kindOf(before[e.Owner], r) == e.Kind:
			p.Index = append(p.Index, IndexWrite{Ref: r, Expect: e, Delete: true})
		default:
			p.Index = append(p.Index, IndexWrite{Ref: r, Expect: e})
		}
	}
	if len(p.Index) == 0 && !changed(p.Profiles) {
		return Plan{}, nil // nothing to do: an unregister of an unbound device
	}
	return p, moved
}

// profileWrites diffs before and after per user. Every examined device is
// conditioned on what was read, whether it changes or not: the plan relied
// on it.
func profileWrites(before, after map[push.Owner]push.Binding, examined map[push.Owner]bool) []ProfileWrite {
	byUser := map[string]*ProfileWrite{}
	var users []string
	for o := range examined {
		if _, ok := byUser[o.UserID]; !ok {
			byUser[o.UserID] = &ProfileWrite{UserID: o.UserID}
			users = append(users, o.UserID)
		}
	}
	slices.Sort(users)
	owners := make([]push.Owner, 0, len(examined))
	for o := range examined {
		owners = append(owners, o)
	}
	sortOwners(owners)
	for _, o := range owners {
		w := byUser[o.UserID]
		b, was := before[o]
		a, is := after[o]
		w.Expect = append(w.Expect, Held{DeviceID: o.DeviceID, Bound: was, Token: b.Token, VoIPToken: b.VoIPToken})
		switch {
		case is && (!was || a != b):
			if was && a.DeviceID == b.DeviceID && onlyVoIPRemoved(b, a) {
				w.RemoveVoIP = append(w.RemoveVoIP, o.DeviceID)
			} else {
				w.Set = append(w.Set, a)
			}
		case was && !is:
			w.Remove = append(w.Remove, o.DeviceID)
		}
	}
	out := make([]ProfileWrite, 0, len(users))
	for _, u := range users {
		out = append(out, *byUser[u])
	}
	return out
}

func onlyVoIPRemoved(before, after push.Binding) bool {
	b := before
	b.VoIPToken = ""
	return before.VoIPToken != "" && b == after
}

func changed(ws []ProfileWrite) bool {
	for _, w := range ws {
		if len(w.Set)+len(w.Remove)+len(w.RemoveVoIP) > 0 {
			return true
		}
	}
	return false
}

// holderOf returns the device that holds r in bs, or nil.
func holderOf(bs map[push.Owner]push.Binding, r TokenRef) *push.Owner {
	for o, b := range bs {
		if kindOf(b, r) != "" {
			return &o
		}
	}
	return nil
}

func sortedOwners(m map[push.Owner]push.Binding) []push.Owner {
	out := make([]push.Owner, 0, len(m))
	for o := range m {
		out = append(out, o)
	}
	sortOwners(out)
	return out
}

func sortOwners(os []push.Owner) {
	slices.SortFunc(os, func(a, b push.Owner) int {
		if c := strings.Compare(a.UserID, b.UserID); c != 0 {
			return c
		}
		return strings.Compare(a.DeviceID, b.DeviceID)
	})
}

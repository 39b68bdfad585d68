package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/offline-push/offline-push/shared/policy"
	"github.com/offline-push/offline-push/shared/push"
)

// groupKey is what the targets of one envelope share besides the message.
type groupKey struct {
	vendor   push.Vendor
	cert     string
	priority push.Priority
}

// fitKey caches the fitted texts of a chunk: many recipients share a text.
type fitKey struct {
	vendor      push.Vendor
	title, body string
	lang        string
}

// fanOut packs the push decisions of chunk index into envelopes and sends
// them, vendor by vendor, skipping the envelopes an earlier attempt sent and
// recording each SendMessageBatch's deliveries in the ledger. Envelope ids
// are "c{chunk}-{vendor}-{n}": the decisions of a chunk and the packing are
// deterministic, so the same ids name the same envelopes on a retry as long
// as the recipients' state has not changed in between.
func (s *Service) fanOut(ctx context.Context, j *job, index int, ds []push.Decision) error {
	p := newPacker(j, index)
	for i := range ds {
		if d := &ds[i]; d.Push && d.Binding != nil {
			if err := p.add(d); err != nil {
				return err
			}
		}
	}
	if err := p.flush(); err != nil {
		return err
	}
	m := &j.in.Message
	for _, v := range push.Vendors {
		var out []Outgoing
		for _, o := range p.out[v] {
			if !j.sent[o.ID] {
				out = append(out, o)
			}
		}
		if len(out) == 0 {
			continue
		}
		targets := make(map[string]int, len(out))
		for _, o := range out {
			targets[o.ID] = len(o.Envelope.Targets)
		}
		err := s.queue.Enqueue(ctx, v, out, func(ids []string) error {
			if err := s.ledger.MarkSent(ctx, j.app, m.ID, j.owner, ids); err != nil {
				return err
			}
			for _, id := range ids {
				j.sent[id] = true
				j.enqueued[v] += targets[id]
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// packer builds the envelopes of one chunk, one open envelope per group.
type packer struct {
	j     *job
	index int
	base  push.Envelope // what every envelope of the message shares
	open  map[groupKey]*building
	fit   map[fitKey]push.EnvelopeText
	seq   map[push.Vendor]int
	out   map[push.Vendor][]Outgoing
}

// building is an envelope being filled.
type building struct {
	env   *push.Envelope
	size  int // encoded size so far
	texts map[push.EnvelopeText]int
}

func newPacker(j *job, index int) *packer {
	m := &j.in.Message
	base := push.Envelope{
		Version:          push.EnvelopeVersion,
		App:              j.app,
		MessageID:        m.ID,
		Kind:             m.Kind,
		SenderID:         m.Sender.UserID,
		ConversationType: m.Conversation.Type,
		ConversationID:   m.Conversation.ID,
		Payload:          m.Content.Payload,
		Badge:            m.Content.Badge && m.Kind != push.KindCallCancel,
		Sound:            m.Content.Sound,
		ResourceID:       m.Content.ResourceID,
	}
	switch {
	case m.Kind == push.KindCallInvite:
		base.ExpiresAt = m.Call.ExpiresAt().UnixMilli()
	case m.TTL == 0:
		base.NowOrNever = true
		base.ExpiresAt = j.accepted.Add(push.NowOrNeverGrace).UnixMilli()
	default:
		base.ExpiresAt = j.accepted.Add(m.TTL).UnixMilli()
	}
	if m.Call != nil {
		base.CallID, base.Media = m.Call.ID, m.Call.Media
	}
	return &packer{
		j: j, index: index, base: base,
		open: map[groupKey]*building{},
		fit:  map[fitKey]push.EnvelopeText{},
		seq:  map[push.Vendor]int{},
		out:  map[push.Vendor][]Outgoing{},
	}
}

// priority is the priority of a decision's push (see push.Priority).
func priority(m *push.Message, d *push.Decision) push.Priority {
	if m.Kind != push.KindMessage || d.Reason == push.ReasonForced {
		return push.PriorityHigh
	}
	return push.PriorityNormal
}

// add packs the push of d.
func (p *packer) add(d *push.Decision) error {
	m := &p.j.in.Message
	b := d.Binding
	key := groupKey{vendor: b.Vendor, cert: b.CertName, priority: priority(m, d)}
	t := push.Target{UserID: d.UserID, DeviceID: d.DeviceID, Token: b.Token, Platform: b.Platform}
	if d.VoIP {
		t.Token, t.Kind = b.VoIPToken, push.TokenVoIP
	}
	if b.Environment == push.Sandbox {
		t.Environment = push.Sandbox
	}
	if m.Call != nil {
		t.CollapseID, t.NotifyID = push.CollapseFor(b.Vendor, push.CallCollapseKey(d.UserID))
	}
	text := p.text(b.Vendor, d)

	bl := p.open[key]
	if bl == nil {
		var err error
		if bl, err = p.start(key); err != nil {
			return err
		}
	}
	x, known := bl.texts[text]
	textSize := 0
	if !known {
		x = len(bl.env.Texts)
		var err error
		if textSize, err = encodedSize(text); err != nil {
			return err
		}
		if x > 0 {
			textSize++ // the comma
		}
	}
	t.Text = x
	targetSize, err := encodedSize(t)
	if err != nil {
		return err
	}
	if len(bl.env.Targets) > 0 {
		targetSize++
	}
	if len(bl.env.Targets) == push.MaxEnvelopeTargets || bl.size+textSize+targetSize > push.MaxEnvelopeBytes {
		if len(bl.env.Targets) == 0 {
			return fmt.Errorf("a target of message %s does not fit an empty envelope", m.ID)
		}
		if err := p.close(key); err != nil {
			return err
		}
		return p.add(d)
	}
	if !known {
		bl.texts[text] = x
		bl.env.Texts = append(bl.env.Texts, text)
		bl.size += textSize
	}
	bl.env.Targets = append(bl.env.Targets, t)
	bl.size += targetSize
	return nil
}

// text returns d's text fitted to vendor v's budget (POLICY.md rule 22).
func (p *packer) text(v push.Vendor, d *push.Decision) push.EnvelopeText {
	k := fitKey{vendor: v, title: d.Title, body: d.Content, lang: d.Language}
	if t, ok := p.fit[k]; ok {
		return t
	}
	title, body := policy.Fit(v, d.Title, d.Content)
	t := push.EnvelopeText{Title: title, Body: body, Lang: d.Language}
	p.fit[k] = t
	return t
}

// start opens an envelope for key.
func (p *packer) start(key groupKey) (*building, error) {
	env := p.base
	env.Vendor, env.CertName, env.Priority = key.vendor, key.cert, key.priority
	if env.Kind == push.KindMessage {
		env.CollapseID, env.NotifyID = push.CollapseFor(key.vendor, push.MessageCollapseKey(env.MessageID))
	}
	env.Texts, env.Targets = []push.EnvelopeText{}, []push.Target{}
	size, err := encodedSize(&env)
	if err != nil {
		return nil, err
	}
	bl := &building{env: &env, size: size, texts: map[push.EnvelopeText]int{}}
	p.open[key] = bl
	return bl, nil
}

// close finishes the open envelope of key and names it.
func (p *packer) close(key groupKey) error {
	bl := p.open[key]
	delete(p.open, key)
	if bl == nil || len(bl.env.Targets) == 0 {
		return nil
	}
	// The size was added up piece by piece; the encoding is the sum of its
	// pieces, which this checks once per envelope.
	if n, err := encodedSize(bl.env); err != nil || n != bl.size || n > push.MaxEnvelopeBytes {
		return fmt.Errorf("envelope of message %s: encoded %d bytes, packed as %d (%v)", bl.env.MessageID, n, bl.size, err)
	}
	v := key.vendor
	id := "c" + strconv.Itoa(p.index) + "-" + string(v) + "-" + strconv.Itoa(p.seq[v])
	p.seq[v]++
	p.out[v] = append(p.out[v], Outgoing{ID: id, Envelope: bl.env})
	return nil
}

// flush closes every open envelope, in a fixed order of groups.
func (p *packer) flush() error {
	keys := make([]groupKey, 0, len(p.open))
	for k := range p.open {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool {
		x, y := keys[a], keys[b]
		if x.vendor != y.vendor {
			return x.vendor < y.vendor
		}
		if x.cert != y.cert {
			return x.cert < y.cert
		}
		return x.priority < y.priority
	})
	for _, k := range keys {
		if err := p.close(k); err != nil {
			return err
		}
	}
	return nil
}

// encodedSize is the size of v in the envelope's encoding
// (push.EncodeEnvelope is json.Marshal), so sizes of pieces add up.
func encodedSize(v any) (int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("measure envelope: %w", err)
	}
	return len(b), nil
}

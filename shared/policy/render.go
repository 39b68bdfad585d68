package policy

import (
	"sort"

	"github.com/offline-push/offline-push/shared/push"
)

// Viewer is what rendering needs to know about a recipient and one of
// their devices.
type Viewer struct {
	Language    string // the recipient's language setting; empty when none
	Locale      string // the device's locale; the fallback when Language is empty
	ShowPreview bool   // the recipient's showPreview setting
	Forced      bool   // the decision's reason is forced
}

// Text is a rendered notification before any vendor's truncation.
type Text struct {
	Title string
	Body  string
	// Language is the translation key chosen, as the message spelled it;
	// empty for the original text, forced content and the placeholder.
	Language string
}

// Prepare renders m's texts once (POLICY.md §6) so that judging each
// recipient only picks among them. m must not change while the Prepared is
// in use. A nil m prepares an empty message of kind call_cancel, which
// Evaluate never pushes.
func Prepare(m *push.Message) *Prepared {
	if m == nil {
		m = &push.Message{Kind: push.KindCallCancel}
	}
	c := &m.Content
	p := &Prepared{m: m, forced: m.Force.Content, placeholder: c.Placeholder}
	if p.placeholder == "" {
		p.placeholder = push.DefaultPlaceholder
	}
	name := m.Sender.Nickname
	if name == "" {
		name = m.Sender.UserID
	}
	p.title = c.Title
	if p.title == "" {
		p.title = name
	}
	// Rule 20: the prefix applies to group and peer messages alike; a
	// cancel's "Missed call" text never gets one (API.md §6).
	prefix := ""
	if c.NicknamePrefix && m.Kind != push.KindCallCancel {
		prefix = name + ": "
	}
	p.original = prefix + c.Body
	if len(c.Translations) > 0 {
		p.langs = make([]langText, 0, len(c.Translations))
		for tag, text := range c.Translations {
			p.langs = append(p.langs, langText{tag: tag, text: prefix + text})
		}
		// Sorted, so that two keys differing only in case pick the same
		// one every time; the parser should refuse such keys anyway.
		sort.Slice(p.langs, func(i, j int) bool { return p.langs[i].tag < p.langs[j].tag })
	}
	return p
}

// Render returns the text v's device is shown (POLICY.md rules 18–21):
//
//   - Privacy first: when the recipient's ShowPreview is false or the sender
//     set hideContent, title and body are both the placeholder (the
//     message's placeholder, else push.DefaultPlaceholder). The title is the
//     placeholder too, not the sender's name, because who wrote is part of
//     what privacy hides, and several vendors refuse an empty title.
//   - A forced recipient gets the force content when the message has one,
//     as given: no prefix, no translation.
//   - Otherwise the language (v.Language, else v.Locale, never both) picks a
//     translation: the exact tag, then the tag's primary subtag ("en-GB" →
//     "en"), case-insensitively and with "_" read as "-"; with no match the
//     original text. Each is prefixed "<nickname>: " (the sender's id when no
//     nickname) when the message asks for the prefix.
//   - The title is the message's title, else the sender's nickname, else
//     the sender's id.
func (p *Prepared) Render(v Viewer) Text {
	if !v.ShowPreview || p.m.Content.HideContent {
		return Text{Title: p.placeholder, Body: p.placeholder}
	}
	if v.Forced && p.forced != "" {
		return Text{Title: p.title, Body: p.forced}
	}
	pref := v.Language
	if pref == "" {
		pref = v.Locale
	}
	if i := p.pick(pref); i >= 0 {
		return Text{Title: p.title, Body: p.langs[i].text, Language: p.langs[i].tag}
	}
	return Text{Title: p.title, Body: p.original}
}

// Render is Prepare(m).Render(v), for rendering one text.
func Render(m *push.Message, v Viewer) Text {
	return Prepare(m).Render(v)
}

// pick returns the index of the translation for the language tag pref, or -1
// for the original text.
func (p *Prepared) pick(pref string) int {
	if pref == "" || len(p.langs) == 0 {
		return -1
	}
	for i := range p.langs {
		if sameTag(p.langs[i].tag, pref) {
			return i
		}
	}
	primary := pref
	for i := 0; i < len(pref); i++ {
		if pref[i] == '-' || pref[i] == '_' {
			primary = pref[:i]
			break
		}
	}
	if primary == pref || primary == "" {
		return -1
	}
	for i := range p.langs {
		if sameTag(p.langs[i].tag, primary) {
			return i
		}
	}
	return -1
}

// sameTag compares two language tags ASCII case-insensitively, reading "_"
// as "-" because Android reports locales as "zh_CN". It does not allocate.
func sameTag(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x == '_' {
			x = '-'
		}
		if y == '_' {
			y = '-'
		}
		if x != y {
			return false
		}
	}
	return true
}

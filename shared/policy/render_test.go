package policy_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/offline-push/offline-push/shared/policy"
	"github.com/offline-push/offline-push/shared/push"
)

// TestRenderGolden renders the cases of POLICY.md §6 into
// testdata/render.golden.
func TestRenderGolden(t *testing.T) {
	translated := func(m *push.Message) {
		m.Content.Translations = map[string]string{
			"en": "lunch?", "zh-CN": "吃饭吗?", "zh": "吃饭了吗?", "pt-BR": "almoço?", "fr": "déjeuner ?",
		}
		m.Content.Body = "lunch? (original)"
	}
	tests := []struct {
		name string
		msg  func(m *push.Message)
		v    policy.Viewer
	}{
		{name: "rule 19: language setting, exact tag",
			msg: translated, v: policy.Viewer{Language: "pt-BR", Locale: "en-US", ShowPreview: true}},
		{name: "rule 19: exact tag matches case-insensitively",
			msg: translated, v: policy.Viewer{Language: "ZH-cn", ShowPreview: true}},
		{name: "rule 19: an exact tag beats its primary subtag",
			msg: translated, v: policy.Viewer{Locale: "zh-CN", ShowPreview: true}},
		{name: "rule 19: primary subtag (en-GB → en)",
			msg: translated, v: policy.Viewer{Language: "en-GB", ShowPreview: true}},
		{name: "rule 19: primary subtag of a three-part tag (zh-Hant-TW → zh)",
			msg: translated, v: policy.Viewer{Language: "zh-Hant-TW", ShowPreview: true}},
		{name: "rule 19: the device locale when no language is set",
			msg: translated, v: policy.Viewer{Locale: "fr-CA", ShowPreview: true}},
		{name: "rule 19: an Android-style locale (zh_CN) matches zh-CN",
			msg: translated, v: policy.Viewer{Locale: "zh_CN", ShowPreview: true}},
		{name: "rule 19: the language setting, not the locale, even without a match",
			msg: translated, v: policy.Viewer{Language: "de-DE", Locale: "en-US", ShowPreview: true}},
		{name: "rule 19: no match gives the original text",
			msg: translated, v: policy.Viewer{Locale: "ja-JP", ShowPreview: true}},
		{name: "rule 19: a primary subtag never matches a longer translation tag (pt → pt-BR)",
			msg: translated, v: policy.Viewer{Language: "pt", ShowPreview: true}},
		{name: "rule 19: neither language nor locale gives the original text",
			msg: translated, v: policy.Viewer{ShowPreview: true}},
		{name: "rule 19: no translations at all",
			v: policy.Viewer{Language: "en", ShowPreview: true}},
		{name: "rule 20: nickname prefix in a group",
			v: policy.Viewer{ShowPreview: true}},
		{name: "rule 20: nickname prefix in a peer chat too",
			msg: func(m *push.Message) { m.Conversation = push.Conversation{Type: push.Peer} },
			v:   policy.Viewer{ShowPreview: true}},
		{name: "rule 20: the sender's id when there is no nickname, in prefix and title",
			msg: func(m *push.Message) { m.Sender.Nickname = "" },
			v:   policy.Viewer{ShowPreview: true}},
		{name: "rule 20: the message title when given",
			msg: func(m *push.Message) { m.Content.Title = "Team" },
			v:   policy.Viewer{ShowPreview: true}},
		{name: "rule 20: nicknamePrefix false",
			msg: func(m *push.Message) { m.Content.NicknamePrefix = false },
			v:   policy.Viewer{ShowPreview: true}},
		{name: "rule 20: the prefix applies to translations as well",
			msg: translated, v: policy.Viewer{Language: "zh", ShowPreview: true}},
		{name: "rule 21: recipient showPreview false, default placeholder",
			msg: func(m *push.Message) { m.Content.Title = "Team"; m.Content.Placeholder = "" },
			v:   policy.Viewer{ShowPreview: false}},
		{name: "rule 21: recipient showPreview false, the message's placeholder",
			msg: func(m *push.Message) { m.Content.Placeholder = "New message" },
			v:   policy.Viewer{ShowPreview: false}},
		{name: "rule 21: sender hideContent hides even from a recipient who shows previews",
			msg: func(m *push.Message) {
				translated(m)
				m.Content.HideContent = true
				m.Content.Placeholder = "New message"
			},
			v: policy.Viewer{Language: "en", ShowPreview: true}},
		{name: "rule 18: forced content, without prefix or translation",
			msg: func(m *push.Message) { translated(m); m.Force.Content = "urgent: lunch?" },
			v:   policy.Viewer{Language: "zh", ShowPreview: true, Forced: true}},
		{name: "rule 18: forced without force content gets the normal text",
			msg: translated, v: policy.Viewer{Language: "zh", ShowPreview: true, Forced: true}},
		{name: "rule 18: force content is for forced recipients only",
			msg: func(m *push.Message) { m.Force.Content = "urgent: lunch?" },
			v:   policy.Viewer{ShowPreview: true}},
		{name: "rule 18: privacy applies to forced content",
			msg: func(m *push.Message) { m.Force.Content = "urgent: lunch?" },
			v:   policy.Viewer{ShowPreview: false, Forced: true}},
		{name: "rule 27: a call_cancel's text gets no prefix",
			msg: func(m *push.Message) { m.Kind = push.KindCallCancel; m.Content.Body = push.DefaultCancelContent },
			v:   policy.Viewer{ShowPreview: true}},
	}
	var buf bytes.Buffer
	for _, tt := range tests {
		m := baseMessage()
		if tt.msg != nil {
			tt.msg(m)
		}
		got := policy.Render(m, tt.v)
		fmt.Fprintf(&buf, "== %s\n", tt.name)
		fmt.Fprintf(&buf, "viewer:   language=%q locale=%q showPreview=%v forced=%v\n",
			tt.v.Language, tt.v.Locale, tt.v.ShowPreview, tt.v.Forced)
		fmt.Fprintf(&buf, "title:    %q\nbody:     %q\nlanguage: %q\n\n", got.Title, got.Body, got.Language)
	}
	golden(t, "render", buf.Bytes())
}

// TestRenderDeterministic checks that translation keys differing only in
// case always pick the same one, whatever the map's iteration order.
func TestRenderDeterministic(t *testing.T) {
	m := baseMessage()
	m.Content.Translations = map[string]string{"EN": "upper", "en": "lower", "En": "mixed"}
	first := policy.Render(m, policy.Viewer{Language: "en", ShowPreview: true})
	for i := 0; i < 50; i++ {
		if got := policy.Render(m, policy.Viewer{Language: "en", ShowPreview: true}); got != first {
			t.Fatalf("render %d: got %+v, want %+v as the first time", i, got, first)
		}
	}
	if first.Language != "EN" {
		t.Errorf("got language %q, want the first key in byte order, %q", first.Language, "EN")
	}
}

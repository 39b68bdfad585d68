package push_test

import (
	"strings"
	"testing"

	"github.com/offline-push/offline-push/shared/push"
)

func TestReasons(t *testing.T) {
	pushes := map[push.Reason]bool{
		push.ReasonForced: true, push.ReasonCall: true, push.ReasonMentioned: true,
		push.ReasonMentionedAll: true, push.ReasonRemindAll: true,
	}
	seen := map[push.Reason]bool{}
	for i, r := range push.Reasons {
		if seen[r] {
			t.Errorf("Reasons[%d] = %s, listed twice", i, r)
		}
		seen[r] = true
		if got, want := r.Pushes(), pushes[r]; got != want {
			t.Errorf("%s.Pushes() = %v, want %v", r, got, want)
		}
		d := r.Describe()
		if d == "" || !strings.HasSuffix(d, ".") || strings.Count(d, ". ") > 0 {
			t.Errorf("%s.Describe() = %q, want one sentence", r, d)
		}
		// The reasons to push come first, in precedence order.
		if i < len(pushes) != r.Pushes() {
			t.Errorf("Reasons[%d] = %s: the reasons to push must come first", i, r)
		}
	}
	if got, want := len(push.Reasons), 17; got != want {
		t.Errorf("got %d reasons, want the %d of API.md §6", got, want)
	}
	if got := push.Reason("unbound").Describe(); got != "" {
		t.Errorf("Describe of a reason outside the set = %q, want empty", got)
	}
}

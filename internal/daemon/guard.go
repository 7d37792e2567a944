package daemon

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/asfence/asfence/internal/config"
	"github.com/asfence/asfence/internal/store"
	"github.com/asfence/asfence/policy"
)

// checkGuard returns why a change must be held for approval (nil: it may be
// applied). Ratios are of the target's prefixes in force; a target that had
// none is being filled for the first time and is not ratio-limited.
func checkGuard(g config.Guard, ch policy.Change) []string {
	maxWithdraw, maxAdd := g.Values()
	var why []string
	total := 0
	for _, t := range ch.Targets {
		removed, added := len(t.Removed), len(t.Added)
		total += removed
		if t.Before == 0 {
			continue
		}
		if t.After == 0 && !g.AllowEmpty {
			why = append(why, fmt.Sprintf("%s: would empty the target (%d -> 0 prefixes; guard.allow_empty is off)", t.Target, t.Before))
			continue
		}
		if r := float64(removed) / float64(t.Before); r > maxWithdraw {
			why = append(why, fmt.Sprintf("%s: would withdraw %d of %d prefixes (%.1f%%, guard.max_withdraw_ratio %.1f%%)",
				t.Target, removed, t.Before, 100*r, 100*maxWithdraw))
		}
		if r := float64(added) / float64(t.Before); r > maxAdd {
			why = append(why, fmt.Sprintf("%s: would add %d prefixes to %d (%.1f%%, guard.max_add_ratio %.1f%%)",
				t.Target, added, t.Before, 100*r, 100*maxAdd))
		}
	}
	if g.MaxWithdraw > 0 && total > g.MaxWithdraw {
		why = append(why, fmt.Sprintf("would withdraw %d prefixes in all (guard.max_withdraw %d)", total, g.MaxWithdraw))
	}
	return why
}

// checkWindow returns why a change must be held because its withdrawals,
// counted against base (the set in force at the start of guard.window, or
// the last approved one), go past the limits: small runs must not add up
// to what one run may not do.
func checkWindow(g config.Guard, base *store.GuardBase, in *policy.Intent) []string {
	maxWithdraw, _ := g.Values()
	var why []string
	total := 0
	window := strings.TrimSuffix(strings.TrimSuffix(g.WindowValue().String(), "0s"), "0m")
	since := fmt.Sprintf("since run %d's set, in force at %s (guard.window %s)", base.RunID, base.At.UTC().Format(time.RFC3339), window)
	for _, t := range in.Targets {
		old := base.Targets[t.Name]
		if len(old) == 0 {
			continue
		}
		now := make(map[netip.Prefix]bool, len(t.Prefixes))
		for _, p := range t.Prefixes {
			now[p.Prefix] = true
		}
		removed := 0
		for _, p := range old {
			if !now[p] {
				removed++
			}
		}
		total += removed
		if len(t.Prefixes) == 0 {
			continue // emptying is the per-run guard's (allow_empty)
		}
		if r := float64(removed) / float64(len(old)); r > maxWithdraw {
			why = append(why, fmt.Sprintf("%s: would withdraw %d of %d prefixes %s: %.1f%%, guard.max_withdraw_ratio %.1f%%",
				t.Name, removed, len(old), since, 100*r, 100*maxWithdraw))
		}
	}
	if g.MaxWithdraw > 0 && total > g.MaxWithdraw {
		why = append(why, fmt.Sprintf("would withdraw %d prefixes in all %s: guard.max_withdraw %d", total, since, g.MaxWithdraw))
	}
	return why
}

package integration

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/asfence/asfence/integration/lab"
	"github.com/asfence/asfence/internal/api"
	"github.com/asfence/asfence/internal/store"
)

// xssRouter is the sysName a router sends in its BMP Initiation message:
// router data, shown as text like registry data.
const xssRouter = `<script>alert(3)</script>`

// TestConsoleWatchBrowser: the console of a daemon with the live watch, in
// chromium. A gobgpd router reports to bmp.listen over BMP (with a sysName
// carrying markup) the routes of an upstream; a route of a target ASN
// becomes a run with trigger watch. The overview shows the router up with
// the peers and routes /api/v1/bmp gives, its name as text (no dialog),
// and the watch's counts; the runs page's trigger filter lists the watch
// run and only runs with that trigger.
func TestConsoleWatchBrowser(t *testing.T) {
	chromiumPath(t)
	lab.Require(t, "gobgpd", "gobgp")
	w := newWatchLab(t, watchYAML, watchOptions{router: func(t *testing.T, upstream netip.Addr, station netip.AddrPort) lab.Peer {
		return lab.StartGoBGPd(t, lab.Config{ASN: bmpRouterASN,
			Sessions: []lab.Session{{Addr: upstream, ASN: upstreamASN, Passive: true, Families: []lab.Family{lab.IPv4Unicast, lab.IPv6Unicast}}},
			BMP:      []lab.BMPStation{{Addr: station, Policy: "pre-policy", Name: xssRouter}}})
	}})
	ctx := context.Background()
	w.start("--offline")
	if first := w.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 }); first.Outcome != store.Applied {
		t.Fatalf("first run: %+v", first)
	}
	lab.WaitEstablished(t, ctx, w.router, w.upstream.Addr(), 60*time.Second)
	target := netip.MustParsePrefix("20.1.0.0/24")
	if inIntent(w.applied(), target) {
		t.Fatalf("%s is already in the embedded set: pick another test prefix", target)
	}
	w.announce(t, []uint32{3356}, netip.MustParsePrefix("20.2.0.0/24"))
	w.announce(t, []uint32{396986}, target)
	run := w.waitRun("watch", 60*time.Second, func(r *store.Run) bool { return r.Trigger == "watch" })
	if run.Outcome != store.Applied || run.Diff.Added != 1 {
		t.Fatalf("watch run: %+v", run)
	}
	// The router's state, as the API has it once both routes arrived.
	var st api.BMP
	err := lab.Eventually(ctx, 60*time.Second, func(context.Context) error {
		st = api.BMP{}
		if err := apiGet(w.client.Base+"/api/v1/bmp", &st); err != nil {
			return err
		}
		if len(st.Routers) != 1 || st.Routers[0].State != "up" || st.Routers[0].Routes < 2 || st.Watch.LastRun != run.ID {
			return fmt.Errorf("/api/v1/bmp: %+v", st)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	router := st.Routers[0]
	if router.Name != xssRouter {
		t.Fatalf("router name %q, want the sysName %q", router.Name, xssRouter)
	}

	b := newBrowser(t)
	base := w.client.Base
	row := fmt.Sprintf(`#bmp-routers tr[data-router=%q]`, router.Address)
	b.do("overview", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(row)))
	cells := map[string]string{
		"state":  b.text(row + ` td:nth-child(2)`),
		"peers":  b.text(row + ` td[data-count="peers"]`),
		"routes": b.text(row + ` td[data-count="routes"]`),
		"router": b.text(row + ` td:first-child`),
	}
	// The routes held stay as they were (nothing announced since): the
	// page counts what the API counted.
	for name, want := range map[string]string{"state": "up", "peers": strconv.Itoa(router.Peers), "routes": strconv.Itoa(router.Routes)} {
		if got := strings.TrimSpace(cells[name]); got != want {
			t.Errorf("overview BMP router %s: %q, /api/v1/bmp says %q", name, got, want)
		}
	}
	if !strings.Contains(cells["router"], router.Address+" "+xssRouter) {
		t.Errorf("the router's sysName is not shown as text: %q", cells["router"])
	}
	scripts := eval[int](b, `Array.from(document.scripts).filter(s => s.textContent.includes("alert")).length`)
	if scripts != 0 || len(b.openedDialogs()) != 0 {
		t.Errorf("router markup ran: %d scripts, dialogs %v", scripts, b.openedDialogs())
	}
	for name, want := range map[string]uint64{"applied": st.Watch.Applied, "held": st.Watch.Held, "refused": st.Watch.Refused} {
		got := b.text(fmt.Sprintf(`#watch dd[data-count=%q]`, name))
		if !strings.HasPrefix(got, strconv.FormatUint(want, 10)+" ") {
			t.Errorf("overview watch %s: %q, /api/v1/bmp says %d", name, got, want)
		}
	}
	if got, want := b.text(`#watch dd[data-count="window"]`), fmt.Sprintf("%d of %d per %s", st.Watch.WindowUsed, st.Watch.MaxAdditions, st.Watch.Window); !strings.HasPrefix(got, want) {
		t.Errorf("overview watch budget: %q, want %q", got, want)
	}

	// The runs page's trigger filter, filled in as a user would.
	b.do("runs filter", chromedp.Navigate(base+"/runs"), chromedp.SendKeys(chromedp.CSS(`input[name="trigger"]`), "watch\r"))
	b.waitPage("trigger=watch")
	triggers := eval[[]string](b, `Array.from(document.querySelectorAll("table.runs tbody tr")).map(r => r.dataset.run + " " + r.cells[2].textContent)`)
	if len(triggers) == 0 || triggers[0] != fmt.Sprintf("%d watch", run.ID) {
		t.Errorf("runs with trigger watch: %q, want run %d first", triggers, run.ID)
	}
	for _, r := range triggers {
		if !strings.HasSuffix(r, " watch") {
			t.Errorf("the trigger filter lists %q", r)
		}
	}
}

// TestConsoleFeedBrowser: a feed neighbor (a BIRD route reflector) is
// listed among the BGP peers, marked as a feed, apart from the RTBH BIRD.
func TestConsoleFeedBrowser(t *testing.T) {
	chromiumPath(t)
	w := newWatchLab(t, watchYAML, watchOptions{})
	ctx := context.Background()
	w.start("--offline")
	if first := w.waitRun("first", 60*time.Second, func(r *store.Run) bool { return r.ID == 1 }); first.Outcome != store.Applied {
		t.Fatalf("first run: %+v", first)
	}
	lab.WaitEstablished(t, ctx, w.rr, w.addr, 60*time.Second)
	b := newBrowser(t)
	feed := fmt.Sprintf(`tr[data-peer=%q]`, w.rr.Addr().String())
	b.do("overview", chromedp.Navigate(w.client.Base+"/"), chromedp.WaitVisible(chromedp.CSS(feed)))
	marks := eval[[]string](b, `Array.from(document.querySelectorAll("tr[data-peer]")).map(r => r.dataset.peer + " " + (r.dataset.feed || "-"))`)
	want := map[string]string{w.rr.Addr().String(): "true", w.bird.Addr().String(): "-"}
	for _, m := range marks {
		addr, mark, _ := strings.Cut(m, " ")
		if w, ok := want[addr]; !ok || w != mark {
			t.Errorf("peer row %q, want feed mark %q", m, w)
		}
		delete(want, addr)
	}
	if len(want) != 0 {
		t.Errorf("peers missing from the overview: %v (rows %q)", want, marks)
	}
	if tag := b.text(feed + ` .tag`); tag != "feed" {
		t.Errorf("feed neighbor tag %q", tag)
	}
}

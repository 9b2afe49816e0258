package app_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium. Without it the test fails under
// CI=true and is skipped otherwise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chromium is required under CI but not installed (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); skipping the browser test")
	return ""
}

// TestDocsPageInABrowser loads /docs in headless Chromium, checks that it
// logs no error and loads nothing from another origin, finds the movie
// endpoints, and runs a "try it" GET against the live gateway.
func TestDocsPageInABrowser(t *testing.T) {
	chromium := chromiumPath(t)
	s := startStack(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	defer cancelAlloc()
	var mu sync.Mutex
	var problems []string
	note := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	// The listener sees every event of the tab from its first command on.
	listener := chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" || ev.Type == "assert" {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				note("console.%s: %s", ev.Type, strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := ""
			if d.Exception != nil {
				desc = d.Exception.Description
			}
			note("exception: %s %s (%s:%d)", d.Text, desc, d.URL, d.LineNumber)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				note("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			u := ev.Request.URL
			if !strings.HasPrefix(u, s.base+"/") && !strings.HasPrefix(u, "data:") {
				note("request to another origin: %s", u)
			}
		}
	})
	ctx, cancel := chromedp.NewContext(allocCtx, listener)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	const op = "#operations-CatalogService-CatalogService_GetMovie"
	before := s.catalog.Count("GetMovie")
	fail := func(step string, err error) {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s: %v (browser problems so far: %q)", step, err, problems)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.base+"/docs"),
		chromedp.WaitVisible(chromedp.CSS(op)),
	); err != nil {
		fail("loading /docs", err)
	}
	paths, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll(".opblock-summary-path")).map(e => e.getAttribute("data-path"))`))
	if err != nil {
		fail("listing the operations", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(op+" .opblock-summary-control")),
		chromedp.WaitVisible(chromedp.CSS(op+" .try-out__btn")),
		chromedp.Click(chromedp.CSS(op+" .try-out__btn")),
		chromedp.WaitVisible(chromedp.CSS(op+` input[placeholder="id"]`)),
		chromedp.SendKeys(chromedp.CSS(op+` input[placeholder="id"]`), "m_7"),
		chromedp.Click(chromedp.CSS(op+" .btn.execute")),
		chromedp.WaitVisible(chromedp.CSS(op+" .live-responses-table tbody .response-col_status")),
	); err != nil {
		fail("trying GetMovie out", err)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(op+" .live-responses-table tbody .response-col_status")))
	if err != nil {
		fail("reading the status", err)
	}
	responseBody, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(op+" .live-responses-table tbody .response-col_description")))
	if err != nil {
		fail("reading the response", err)
	}
	for _, want := range []string{"/v1/movies", "/v1/movies/{id}", "/v1/movies:batchGet", "/v1/search/movies"} {
		found := false
		for _, p := range paths {
			found = found || p == want
		}
		if !found {
			t.Errorf("the page does not list %s (it lists %v)", want, paths)
		}
	}
	if !strings.Contains(status, "200") || !strings.Contains(responseBody, "Movie 7") {
		t.Errorf("try it out: status %q, body %q", status, responseBody)
	}
	if n := s.catalog.Count("GetMovie"); n != before+1 {
		t.Errorf("the try-it request did not reach the catalog (%d -> %d calls)", before, n)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("browser: %s", p)
	}
}

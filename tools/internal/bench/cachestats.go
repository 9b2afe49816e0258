package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// cacheMetric is the gateway's response-cache counter (respcache): OTel's
// marquee.gateway.cache.lookups with a result attribute of hit or miss, as
// the Prometheus exporter names it. Matching on the prefix keeps working
// whatever unit suffix the exporter adds.
const cacheMetric = "marquee_gateway_cache_lookups"

// cacheCounts are the gateway's cache lookups so far.
type cacheCounts struct {
	Hits, Misses float64
	Found        bool
}

// scrapeCache reads the gateway's cache counters from its Prometheus
// endpoint (the admin port's /metrics).
func scrapeCache(ctx context.Context, c *http.Client, metricsURL string) (cacheCounts, error) {
	var cc cacheCounts
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return cc, fmt.Errorf("building metrics request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return cc, fmt.Errorf("scraping %s: %w", metricsURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return cc, fmt.Errorf("scraping %s: %s", metricsURL, resp.Status)
	}
	return parseCacheCounts(resp.Body)
}

func parseCacheCounts(r io.Reader) (cacheCounts, error) {
	var cc cacheCounts
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, cacheMetric) {
			continue
		}
		brace := strings.IndexByte(line, '{')
		end := strings.LastIndexByte(line, '}')
		if brace < 0 || end < brace {
			continue
		}
		labels := line[brace+1 : end]
		fields := strings.Fields(line[end+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.Contains(labels, `result="hit"`):
			cc.Hits += v
			cc.Found = true
		case strings.Contains(labels, `result="miss"`):
			cc.Misses += v
			cc.Found = true
		}
	}
	if err := sc.Err(); err != nil {
		return cc, fmt.Errorf("reading metrics: %w", err)
	}
	return cc, nil
}

// CacheReport is the response cache's behaviour during the measured window.
type CacheReport struct {
	// Source says where the figures come from: "gateway metrics" (the
	// respcache lookup counter), "X-Cache header", or "unavailable".
	Source string  `json:"source"`
	Hits   float64 `json:"hits"`
	Misses float64 `json:"misses"`
	// HitRatio is hits over lookups; lookups are the GETs of public
	// resources the gateway considered (requests with Cache-Control:
	// no-cache bypass the cache and are not counted).
	HitRatio float64 `json:"hit_ratio"`
	Note     string  `json:"note,omitempty"`
}

func cacheReport(before, after cacheCounts, headerHits, headerMisses int64) CacheReport {
	if after.Found {
		r := CacheReport{Source: "gateway metrics (" + cacheMetric + ")", Hits: after.Hits - before.Hits, Misses: after.Misses - before.Misses}
		if n := r.Hits + r.Misses; n > 0 {
			r.HitRatio = round(r.Hits/n, 4)
		}
		return r
	}
	if headerHits+headerMisses > 0 {
		r := CacheReport{Source: "X-Cache header", Hits: float64(headerHits), Misses: float64(headerMisses)}
		r.HitRatio = round(r.Hits/(r.Hits+r.Misses), 4)
		return r
	}
	return CacheReport{Source: "unavailable", Note: "no gateway metrics URL given (-metrics) and no X-Cache header in responses"}
}

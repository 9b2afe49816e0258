package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/marquee-dev/marquee/tools/internal/baseline"
)

// Report is everything one run measured; it is written as JSON and
// summarised as Markdown.
type Report struct {
	Date     string   `json:"date"`
	Machine  Machine  `json:"machine"`
	Command  string   `json:"command"`
	Target   string   `json:"target"`
	Settings Settings `json:"settings"`

	// Load is the realistic mix at the offered rate, open model.
	Load  LoadResult  `json:"load"`
	Cache CacheReport `json:"cache"`
	// Processes is CPU and memory per process during Load.
	Processes []ProcUsage `json:"processes,omitempty"`

	// Baselines are the closed-loop ceilings and their Marquee
	// counterparts, measured right after Load; BaselineCPU is per-process
	// CPU and memory during each, by baseline name.
	Baselines   []baseline.Result      `json:"baselines,omitempty"`
	BaselineCPU map[string][]ProcUsage `json:"baseline_processes,omitempty"`
	Ratios      []baseline.Ratio       `json:"ratios,omitempty"`
	Targets     []TargetCheck          `json:"targets,omitempty"`

	EngineCurve *baseline.Curve `json:"engine_curve,omitempty"`

	// LoadAverage is /proc/loadavg at the start and the end of the run:
	// other work on the machine shares its cores, which pinning cannot
	// prevent, and a reader should know how busy it was.
	LoadAverage []string `json:"load_average,omitempty"`

	// Notes say what was skipped or adjusted, and why.
	Notes []string `json:"notes,omitempty"`
}

// Settings echo the run's parameters.
type Settings struct {
	Rate     float64 `json:"rate_per_s"`
	Duration string  `json:"duration"`
	Warmup   string  `json:"warmup"`
	Mix      string  `json:"mix"`
	ZipfS    float64 `json:"zipf_s"`
	Movies   int     `json:"movies"`
	Lists    int     `json:"list_queries"`
	Searches int     `json:"search_queries"`
	Suggests int     `json:"suggest_queries"`
	// Clients is how many simulated clients sent the authenticated kinds
	// (0: the administrator's credential stood in).
	Clients     int    `json:"clients"`
	Smoke       bool   `json:"smoke"`
	Spawned     bool   `json:"spawned_stack"`
	ServiceCPUs string `json:"service_cpus,omitempty"`
	LoadCPUs    string `json:"load_cpus,omitempty"`
	EngineCPUs  string `json:"engine_cpus,omitempty"`
	// ServicesFrom is the code the spawned services were built from.
	ServicesFrom string `json:"services_from,omitempty"`
	Concurrency  int    `json:"baseline_concurrency"`
	BaselineFor  string `json:"baseline_duration"`
}

// TargetCheck is one of the issues' targets and whether this run met it.
type TargetCheck struct {
	Name string  `json:"name"`
	Want string  `json:"want"`
	Got  float64 `json:"got"`
	Unit string  `json:"unit"`
	Met  bool    `json:"met"`
	// Applies is false when the run could not judge it (a smoke run, a
	// rate other than the target's).
	Applies bool `json:"applies"`
}

// Machine describes where the numbers come from.
type Machine struct {
	CPUs     int    `json:"nproc"`
	CPUModel string `json:"cpu_model"`
	MemGiB   int    `json:"mem_gib"`
	Kernel   string `json:"kernel"`
	Go       string `json:"go"`
}

func describeMachine() Machine {
	m := Machine{Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			switch strings.TrimSpace(k) {
			case "processor":
				m.CPUs++
			case "model name":
				if m.CPUModel == "" {
					m.CPUModel = strings.TrimSpace(v)
				}
			}
		}
	}
	if m.CPUs == 0 {
		m.CPUs = runtime.NumCPU()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				m.MemGiB = int((kib(strings.TrimSpace(v)) + 512*1024) / (1024 * 1024))
			}
		}
		_ = f.Close()
	}
	return m
}

// writeJSON writes r to path ("-" is w).
func writeJSON(r *Report, path string, w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding report: %w", err)
	}
	b = append(b, '\n')
	if path == "-" {
		_, err := w.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

const benchmarksHeader = `# Benchmarks

Results of ` + "`marquee bench`" + `, newest last. Each section says when and where it
ran and the exact command; the JSON report of the same run has every figure.
Latencies are milliseconds; throughput is successful requests per second.
How to read them and what they mean for production: docs/capacity.md.
`

// appendMarkdown appends r as a section to the Markdown file at path,
// creating the file with its header if needed.
func appendMarkdown(r *Report, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	if os.IsNotExist(statErr) {
		if _, err := io.WriteString(f, benchmarksHeader); err != nil {
			_ = f.Close()
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if _, err := io.WriteString(f, "\n"+markdown(r)); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// markdown renders r as a section: the realistic mix per kind, per-process
// CPU and memory, baselines, ratios and targets, the engine curve.
func markdown(r *Report) string {
	var b strings.Builder
	title := "Realistic mix"
	if r.Settings.Smoke {
		title = "Smoke run"
	}
	fmt.Fprintf(&b, "## %s — %s\n\n", title, r.Date)
	fmt.Fprintf(&b, "- Machine: %d × %s, %d GiB, Linux %s, %s\n", r.Machine.CPUs, r.Machine.CPUModel, r.Machine.MemGiB, r.Machine.Kernel, r.Machine.Go)
	fmt.Fprintf(&b, "- Command: `%s`\n", r.Command)
	if len(r.LoadAverage) == 2 {
		fmt.Fprintf(&b, "- Load average (1, 5, 15 min) at start %s, at end %s: other work shared these cores\n", r.LoadAverage[0], r.LoadAverage[1])
	}
	stack := "an already running stack at " + r.Target
	if r.Settings.Spawned {
		stack = "services as separate processes on loopback, rate limits off"
		if r.Settings.ServiceCPUs != "" {
			stack += fmt.Sprintf(", services pinned to CPU %s, load generator to CPU %s, engine (FerretDB, standing in for MongoDB) to CPU %s", r.Settings.ServiceCPUs, r.Settings.LoadCPUs, r.Settings.EngineCPUs)
		}
		if r.Settings.ServicesFrom != "" {
			stack += "; services built from " + r.Settings.ServicesFrom
		}
	}
	fmt.Fprintf(&b, "- Stack: %s; catalogue of %d movies; %d list, %d search, %d suggest queries; Zipf s=%.2g\n",
		stack, r.Settings.Movies, r.Settings.Lists, r.Settings.Searches, r.Settings.Suggests, r.Settings.ZipfS)
	fmt.Fprintf(&b, "- Load: open model, %.0f requests/s for %s after %s of warm-up; mix %s", r.Settings.Rate, r.Settings.Duration, r.Settings.Warmup, r.Settings.Mix)
	if r.Settings.Clients > 0 {
		fmt.Fprintf(&b, "; authenticated kinds from %d simulated clients, each signed in once with its bearer token and an API key (`marquee bench -h` explains the split)", r.Settings.Clients)
	}
	b.WriteString("\n\n")

	b.WriteString("| requests | share | throughput/s | p50 | p95 | p99 | max | errors | statuses |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	row := func(res baseline.Result, share string) {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.2f | %.2f | %.2f | %.1f | %d | %s |\n",
			res.Name, share, res.Throughput, res.P50Ms, res.P95Ms, res.P99Ms, res.MaxMs, res.Errors, strings.Join(baseline.SortedCodes(res.Codes), " "))
	}
	row(r.Load.Result, "100%")
	share := func(n int64) string {
		if r.Load.Requests == 0 {
			return "-"
		}
		pc := 100 * float64(n) / float64(r.Load.Requests)
		if pc < 1 {
			return fmt.Sprintf("%.2f%%", pc)
		}
		return fmt.Sprintf("%.1f%%", pc)
	}
	for _, k := range r.Load.Kinds {
		row(k, share(k.Requests))
		// The authenticated reads, by endpoint, right under their kind.
		for _, e := range r.Load.Endpoints {
			if kind, endpoint, _ := strings.Cut(e.Name, "."); kind == k.Name {
				e.Name = "↳ " + endpoint
				row(e, share(e.Requests))
			}
		}
	}
	fmt.Fprintf(&b, "\nResponse cache hit ratio: **%.1f%%** (%.0f hits, %.0f misses; %s).\n", 100*r.Cache.HitRatio, r.Cache.Hits, r.Cache.Misses, r.Cache.Source)
	if len(r.Load.TransportErrors) > 0 {
		b.WriteString("\nTransport errors: ")
		var parts []string
		for k, v := range r.Load.TransportErrors {
			parts = append(parts, fmt.Sprintf("%q ×%d", k, v))
		}
		b.WriteString(strings.Join(parts, ", ") + "\n")
	}

	if len(r.Processes) > 0 {
		b.WriteString("\n| process | CPU s | CPU % of a core | RSS MiB (end) | peak RSS MiB | CPUs |\n|---|---:|---:|---:|---:|---|\n")
		var svc ProcUsage
		var nsvc int
		for _, p := range r.Processes {
			name := p.Name
			switch {
			case isService(p.Name):
				svc.CPUSeconds += p.CPUSeconds
				svc.CPUPercent += p.CPUPercent
				svc.RSSMiB += p.RSSMiB
				svc.PeakRSSMiB += p.PeakRSSMiB
				nsvc++
			case strings.HasPrefix(p.Name, "engine"):
				name += " (FerretDB; MongoDB's stand-in, not a service)"
			}
			fmt.Fprintf(&b, "| %s | %.2f | %.1f | %.1f | %.1f | %s |\n", name, p.CPUSeconds, p.CPUPercent, p.RSSMiB, p.PeakRSSMiB, p.CPUs)
		}
		if nsvc > 1 {
			fmt.Fprintf(&b, "| **the %d services together** | %.2f | %.1f | %.1f | %.1f | %s |\n", nsvc, svc.CPUSeconds, svc.CPUPercent, svc.RSSMiB, svc.PeakRSSMiB, r.Settings.ServiceCPUs)
		}
	}

	if len(r.Baselines) > 0 {
		fmt.Fprintf(&b, "\nBaselines, same run (closed loop, %d workers, %s each, unless an offered rate is given):\n\n", r.Settings.Concurrency, r.Settings.BaselineFor)
		b.WriteString("| measurement | what | throughput/s | items/s | p50 | p95 | p99 | max | errors |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, res := range r.Baselines {
			items := "-"
			if res.ItemsPerSecond > 0 && res.Items != res.Requests-res.Errors {
				items = fmt.Sprintf("%.0f", res.ItemsPerSecond)
			}
			name := res.Name
			if res.Rate > 0 {
				name += fmt.Sprintf(" @%.0f/s", res.Rate)
			}
			fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %.2f | %.2f | %.2f | %.1f | %d |\n",
				name, res.What, res.Throughput, items, res.P50Ms, res.P95Ms, res.P99Ms, res.MaxMs, res.Errors)
		}
	}
	if len(r.Ratios) > 0 {
		b.WriteString("\n| ratio | value | of / baseline | target |\n|---|---:|---|---|\n")
		for _, q := range r.Ratios {
			target := "-"
			if q.Met != nil {
				target = fmt.Sprintf("≥ %.2g: %s", q.Target, yesNo(*q.Met))
			}
			fmt.Fprintf(&b, "| %s | %.3g | %s / %s | %s |\n", q.What, q.Value, q.Of, q.Baseline, target)
		}
	}
	if len(r.Targets) > 0 {
		b.WriteString("\n| target | want | got | met |\n|---|---|---:|---|\n")
		for _, t := range r.Targets {
			met := yesNo(t.Met)
			if !t.Applies {
				met = "n/a (" + notApplicable(r) + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %.4g %s | %s |\n", t.Name, t.Want, t.Got, t.Unit, met)
		}
	}
	if c := r.EngineCurve; c != nil && len(c.Points) > 0 {
		b.WriteString("\nEmbedded engine's own curve (raw driver, FerretDB on SQLite; the engine's limit, not Marquee's):\n\n")
		b.WriteString("| movies | insert docs/s | FindOne p50 | FindOne p95 | sorted page p50 | sorted page p95 | disk MiB |\n|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, p := range c.Points {
			fmt.Fprintf(&b, "| %d | %.0f | %.2f | %.2f | %.1f | %.1f | %.1f |\n", p.Movies, p.InsertDocsPerS,
				p.FindOne.P50Ms, p.FindOne.P95Ms, p.SortedPage.P50Ms, p.SortedPage.P95Ms, float64(p.DiskBytes)/(1<<20))
		}
		fmt.Fprintf(&b, "\nGrowth (log-log slope of p50 against size): FindOne %.2f (%s), sorted page %.2f (%s)",
			c.FindOneExponent, c.FindOneGrowth, c.SortedExponent, c.SortedGrowth)
		if c.DiskGrowth != "" {
			fmt.Fprintf(&b, ", disk %.2f (%s)", c.DiskExponent, c.DiskGrowth)
		}
		b.WriteString(".\n")
	}
	if len(r.Notes) > 0 {
		b.WriteString("\nNotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// isService tells the four services' processes from the engine, the
// helpers and the load generator.
func isService(name string) bool {
	for _, s := range services {
		if name == s {
			return true
		}
	}
	return false
}

func notApplicable(r *Report) string {
	if r.Settings.Smoke {
		return "smoke run"
	}
	return "not measured at the target's conditions"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func nowStamp() string { return time.Now().UTC().Format("2006-01-02 15:04 UTC") }

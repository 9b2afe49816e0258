package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports (the kernel's HZ is hidden
// behind it), and not readable without cgo.
const clockTicks = 100

// Proc is a process whose CPU and memory the bench reports: a service run
// on its own, the whole dev stack, or the load generator itself.
type Proc struct {
	Name string
	PID  int
}

// ProcUsage is one process's resource use over the measured window.
type ProcUsage struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
	// CPUSeconds is user plus system time spent in the window, and
	// CPUPercent the same as a share of one core (200% is both cores of
	// this machine).
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPercent float64 `json:"cpu_percent"`
	// RSSMiB is the resident set at the end of the window, PeakRSSMiB the
	// largest sampled during it, HWMMiB the kernel's high-water mark over
	// the process's life (VmHWM).
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	HWMMiB     float64 `json:"hwm_mib"`
	Threads    int     `json:"threads"`
	// CPUs is the process's CPU affinity (taskset's list), so a reader
	// knows what it could use.
	CPUs string `json:"cpus,omitempty"`
}

// cpuTime reads utime+stime of pid in seconds.
func cpuTime(pid int) (float64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, fmt.Errorf("reading stat of %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields that follow start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing stat of %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, utime field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("parsing stat of %d: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing stat of %d: utime %q stime %q", pid, f[11], f[12])
	}
	return float64(ut+st) / clockTicks, nil
}

type memStatus struct {
	rssKiB, hwmKiB int64
	threads        int
	cpus           string
}

// memory reads VmRSS, VmHWM, Threads and Cpus_allowed_list of pid.
func memory(pid int) (memStatus, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return memStatus{}, fmt.Errorf("reading status of %d: %w", pid, err)
	}
	defer f.Close()
	var m memStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			m.rssKiB = kib(v)
		case "VmHWM":
			m.hwmKiB = kib(v)
		case "Threads":
			m.threads, _ = strconv.Atoi(v)
		case "Cpus_allowed_list":
			m.cpus = v
		}
	}
	return m, sc.Err()
}

func kib(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	return n
}

// procWatch measures processes over a window: CPU from the difference of
// two readings, peak RSS from sampling.
type procWatch struct {
	procs []Proc
	start time.Time
	cpu0  []float64

	mu   sync.Mutex
	peak []int64
	stop chan struct{}
	done chan struct{}
}

// watchProcs starts measuring procs; Stop ends the window.
func watchProcs(procs []Proc) *procWatch {
	w := &procWatch{procs: procs, start: time.Now(), cpu0: make([]float64, len(procs)),
		peak: make([]int64, len(procs)), stop: make(chan struct{}), done: make(chan struct{})}
	for i, p := range procs {
		w.cpu0[i], _ = cpuTime(p.PID)
	}
	w.sample()
	go func() {
		defer close(w.done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w
}

func (w *procWatch) sample() {
	for i, p := range w.procs {
		if m, err := memory(p.PID); err == nil {
			w.mu.Lock()
			w.peak[i] = max(w.peak[i], m.rssKiB)
			w.mu.Unlock()
		}
	}
}

// Stop ends the window and returns each process's usage.
func (w *procWatch) Stop() []ProcUsage {
	close(w.stop)
	<-w.done
	w.sample()
	wall := time.Since(w.start).Seconds()
	out := make([]ProcUsage, 0, len(w.procs))
	for i, p := range w.procs {
		u := ProcUsage{Name: p.Name, PID: p.PID}
		if c, err := cpuTime(p.PID); err == nil {
			u.CPUSeconds = round(c-w.cpu0[i], 2)
			if wall > 0 {
				u.CPUPercent = round(100*(c-w.cpu0[i])/wall, 1)
			}
		}
		if m, err := memory(p.PID); err == nil {
			u.RSSMiB = round(float64(m.rssKiB)/1024, 1)
			u.HWMMiB = round(float64(m.hwmKiB)/1024, 1)
			u.Threads = m.threads
			u.CPUs = m.cpus
		}
		w.mu.Lock()
		u.PeakRSSMiB = round(float64(w.peak[i])/1024, 1)
		w.mu.Unlock()
		out = append(out, u)
	}
	return out
}

func round(v float64, places int) float64 {
	p := 1.0
	for range places {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// parseCPUList reads a taskset-style list ("0", "1-3", "0,2").
func parseCPUList(s string) (unix.CPUSet, error) {
	var set unix.CPUSet
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return set, fmt.Errorf("cpu list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return set, fmt.Errorf("cpu list %q: %w", s, err)
			}
		}
		if n := machineCPUs(); a < 0 || b < a || b >= n {
			return set, fmt.Errorf("cpu list %q: this machine has CPUs 0-%d", s, n-1)
		}
		for c := a; c <= b; c++ {
			set.Set(c)
		}
	}
	if set.Count() == 0 {
		return set, fmt.Errorf("cpu list %q is empty", s)
	}
	return set, nil
}

// machineCPUs is the number of CPUs of the machine, whatever this
// process's affinity (runtime.NumCPU counts only the CPUs it may use, one
// under `taskset -c 1`).
func machineCPUs() int {
	if n := describeMachine().CPUs; n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// pin sets the CPU affinity of every thread of pid (sched_setaffinity acts
// on one thread; threads created later inherit their creator's mask), which
// is what `taskset -a -p` does.
func pin(pid int, cpus string) error {
	set, err := parseCPUList(cpus)
	if err != nil {
		return err
	}
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return fmt.Errorf("listing threads of %d: %w", pid, err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pinning thread %d of %d to CPUs %s: %w", tid, pid, cpus, err)
		}
	}
	return nil
}

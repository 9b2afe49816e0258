package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	catalogv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/catalog/v1"
	"github.com/marquee-dev/marquee/tools/internal/baseline"
	"github.com/marquee-dev/marquee/tools/internal/devstack"
	"github.com/marquee-dev/marquee/tools/internal/generator"
	"github.com/marquee-dev/marquee/tools/internal/importer"
	"github.com/marquee-dev/marquee/tools/internal/moviedata"
)

// spawnOptions configure -spawn.
type spawnOptions struct {
	enabled     bool
	repo        string
	serviceCPUs string
	engineCPUs  string
	seedFile    string
	generate    int
	keep        bool
	logs        io.Writer
}

// services are built from services/<name>/cmd/<name>.
var services = []string{"auth", "catalog", "search", "gateway"}

// child is one process of the spawned stack.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// stack is the spawned stack: the engine and the four services as
// separate processes on free loopback ports, from binaries built for the
// run, with generated secrets and rate limits off.
type stack struct {
	opts     spawnOptions
	dir, bin string
	children []*child

	rest, metrics, catalog, mongoURI string
	email, password                  string
	loadCPUs                         string
}

// spawn builds and starts the stack, seeds it, waits until search has
// indexed the catalogue, and pins the services.
func spawn(ctx context.Context, o spawnOptions) (s *stack, err error) {
	if o.repo == "" {
		if o.repo, err = findRepo(); err != nil {
			return nil, err
		}
	}
	if o.seedFile == "" {
		o.seedFile = filepath.Join(o.repo, "data", "imdb.json")
	}
	if o.serviceCPUs == "" && machineCPUs() >= 2 {
		o.serviceCPUs = "0"
	}
	dir, err := os.MkdirTemp("", "marquee-bench-")
	if err != nil {
		return nil, fmt.Errorf("creating the run directory: %w", err)
	}
	s = &stack{opts: o, dir: dir, bin: filepath.Join(dir, "bin"), email: "bench-admin@marquee.local", password: secret(18)}
	if o.serviceCPUs != "" && machineCPUs() >= 2 {
		s.loadCPUs = otherCPUs(o.serviceCPUs)
	}
	// The engine stands in for MongoDB, which runs on machines of its own
	// in production: by default it shares the load generator's CPU rather
	// than the services'. The report shows the load generator's CPU beside
	// the engine's, so a reader can tell whether the clock that measures
	// latency was crowded (-engine-cpus 0 puts it back with the services).
	if s.opts.engineCPUs == "" {
		s.opts.engineCPUs = s.loadCPUs
		if s.opts.engineCPUs == "" {
			s.opts.engineCPUs = o.serviceCPUs
		}
	}
	defer func() {
		if err != nil {
			s.tail()
			_ = s.Close()
		}
	}()
	logf := func(format string, a ...any) { fmt.Fprintf(o.logs, "bench: "+format+"\n", a...) }

	logf("building the services into %s", s.bin)
	if err := s.build(ctx); err != nil {
		return s, err
	}
	ports, err := freePorts(10)
	if err != nil {
		return s, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	engine, authG, authA, catG, catA, srchG, srchA, gwH, gwA := addr(0), addr(1), addr(2), addr(3), addr(4), addr(5), addr(6), addr(7), addr(8)
	s.rest, s.metrics, s.catalog = "http://"+gwH, "http://"+gwA+"/metrics", catG
	s.mongoURI = "mongodb://" + engine + "/"

	catSecret, srchSecret, gwSecret := secret(24), secret(24), secret(24)
	pageKey := secret(32)
	common := []string{"MARQUEE_LOG_LEVEL=warn", "MARQUEE_LOG_FORMAT=json"}
	target := func(a string) string { return "passthrough:///" + a }
	dataDir := func(name string) string { return "MARQUEE_DATA_DIR=" + filepath.Join(dir, "data", name) }

	logf("starting the engine and the services on loopback")
	if err := s.start("engine", filepath.Join(s.bin, "benchhelper"), []string{"engine", "-addr", engine, "-dir", filepath.Join(dir, "data", "engine")}, nil); err != nil {
		return s, err
	}
	if err := waitTCP(ctx, engine, time.Minute); err != nil {
		return s, fmt.Errorf("engine: %w", err)
	}
	env := map[string][]string{
		"auth": {dataDir("auth"),
			"MARQUEE_AUTH_GRPC_ADDR=" + authG, "MARQUEE_AUTH_ADMIN_ADDR=" + authA,
			"MARQUEE_AUTH_MONGO_URI=" + s.mongoURI,
			"MARQUEE_AUTH_KEY_ENCRYPTION_KEY=" + secret(32),
			"MARQUEE_AUTH_SERVICE_CLIENTS=catalog=" + catSecret + ",search=" + srchSecret + ",gateway=" + gwSecret,
			"MARQUEE_AUTH_TRUSTED_PROXIES=127.0.0.0/8",
			"MARQUEE_AUTH_ADMIN_EMAIL=" + s.email, "MARQUEE_AUTH_ADMIN_PASSWORD=" + s.password,
			// The simulated clients all come from loopback, one address
			// standing in for thousands: per-address sign-up and sign-in
			// throttles off, like the gateway's quotas (0 disables).
			"MARQUEE_AUTH_THROTTLE_SIGNUP_ADDRESS_BURST=0", "MARQUEE_AUTH_THROTTLE_LOGIN_ADDRESS_BURST=0",
		},
		"catalog": {dataDir("catalog"),
			"MARQUEE_CATALOG_GRPC_ADDR=" + catG, "MARQUEE_CATALOG_ADMIN_ADDR=" + catA,
			"MARQUEE_CATALOG_MONGO_URI=" + s.mongoURI, "MARQUEE_CATALOG_AUTH_ADDR=" + target(authG),
			"MARQUEE_CATALOG_CLIENT_SECRET=" + catSecret, "MARQUEE_CATALOG_PAGE_TOKEN_KEY=" + pageKey,
			"MARQUEE_CATALOG_MIGRATE_ON_START=true",
		},
		"search": {dataDir("search"),
			"MARQUEE_SEARCH_GRPC_ADDR=" + srchG, "MARQUEE_SEARCH_ADMIN_ADDR=" + srchA,
			"MARQUEE_SEARCH_INDEX_DIR=" + filepath.Join(dir, "data", "search", "index"),
			"MARQUEE_SEARCH_CATALOG_ADDR=" + target(catG), "MARQUEE_SEARCH_AUTH_ADDR=" + target(authG),
			"MARQUEE_SEARCH_CLIENT_SECRET=" + srchSecret, "MARQUEE_SEARCH_PAGE_TOKEN_SECRET=" + pageKey,
		},
		"gateway": {dataDir("gateway"),
			"MARQUEE_GATEWAY_HTTP_ADDR=" + gwH, "MARQUEE_GATEWAY_ADMIN_ADDR=" + gwA,
			"MARQUEE_GATEWAY_CATALOG_ADDR=" + target(catG), "MARQUEE_GATEWAY_SEARCH_ADDR=" + target(srchG),
			"MARQUEE_GATEWAY_AUTH_ADDR=" + target(authG), "MARQUEE_GATEWAY_CLIENT_SECRET=" + gwSecret,
			// The bench measures the service, not its quotas: 0 is unlimited.
			"MARQUEE_GATEWAY_RATELIMIT_ANONYMOUS_PER_MINUTE=0", "MARQUEE_GATEWAY_RATELIMIT_USER_PER_MINUTE=0",
			"MARQUEE_GATEWAY_RATELIMIT_ADMIN_PER_MINUTE=0", "MARQUEE_GATEWAY_RATELIMIT_TOKEN_PER_MINUTE=0",
		},
	}
	ready := map[string]string{
		"auth": "http://" + authA + "/readyz", "catalog": "http://" + catA + "/readyz",
		"search": "http://" + srchA + "/healthz", "gateway": "http://" + gwH + "/readyz",
	}
	// Auth and catalog first, then the catalogue, then search (which
	// builds its index from the catalog's export, as a new search replica
	// does in production) and the gateway.
	startSvc := func(name string) error {
		if err := s.start(name, filepath.Join(s.bin, name), nil, append(append([]string(nil), common...), env[name]...)); err != nil {
			return err
		}
		return s.waitHTTP(ctx, name, ready[name], 3*time.Minute)
	}
	for _, name := range []string{"auth", "catalog"} {
		if err := startSvc(name); err != nil {
			return s, err
		}
	}
	n, err := s.seed(ctx, authG, catG, logf)
	if err != nil {
		return s, err
	}
	for _, name := range []string{"search", "gateway"} {
		if err := startSvc(name); err != nil {
			return s, err
		}
	}
	logf("waiting for search to index %d movies", n)
	if err := s.waitHTTP(ctx, "search", "http://"+srchA+"/readyz", 3*time.Minute); err != nil {
		return s, err
	}
	if err := waitIndexed(ctx, s.rest, n, 3*time.Minute); err != nil {
		logf("%v (continuing)", err)
	}
	for _, c := range s.children {
		if cpus := s.cpusFor(c.name); cpus != "" {
			if err := pin(c.cmd.Process.Pid, cpus); err != nil {
				return s, err
			}
		}
	}
	logf("stack ready: REST %s, catalog %s, engine %s", s.rest, s.catalog, s.mongoURI)
	return s, nil
}

// configure points cfg at the stack, leaving flags the user set alone.
func (s *stack) configure(cfg *Config, explicit map[string]bool) {
	set := func(flag string, apply func()) {
		if !explicit[flag] {
			apply()
		}
	}
	set("target", func() { cfg.Target = s.rest })
	set("metrics", func() { cfg.MetricsURL = s.metrics })
	set("catalog", func() { cfg.CatalogAddr = s.catalog })
	set("mongo", func() { cfg.MongoURI = s.mongoURI })
	set("email", func() { cfg.Email = s.email })
	set("password", func() { cfg.Password = s.password })
	set("write-baselines", func() { cfg.WriteBaselines = true })
	set("load-cpus", func() { cfg.LoadCPUs = s.loadCPUs })
	cfg.Procs = append(cfg.Procs, s.procs()...)
	cfg.helpers = s
	cfg.spawned = true
	cfg.svcCPUs = s.opts.serviceCPUs
	cfg.engineCPUs = s.opts.engineCPUs
	cfg.servicesFrom = describeRepo(s.opts.repo)
}

// describeRepo says which code the services were built from: the commit of
// a git checkout, and whether services/ had uncommitted changes, so that a
// result can be tied to the code it measured.
func describeRepo(repo string) string {
	rev, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return repo + " (not a git checkout)"
	}
	out := repo + " at " + strings.TrimSpace(string(rev))
	if st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--", "services", "proto").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		out += ", with uncommitted changes under services/ or proto/"
	}
	return out
}

func (s *stack) procs() []Proc {
	out := make([]Proc, 0, len(s.children))
	for _, c := range s.children {
		out = append(out, Proc{Name: c.name, PID: c.cmd.Process.Pid})
	}
	return out
}

// build compiles the four services and the helper with the default
// settings, so the build cache that `go build` and `go run` fill is reused
// (cgo makes no difference to these binaries' speed). One at a time: this
// machine has two cores and others build too.
func (s *stack) build(ctx context.Context) error {
	type target struct{ dir, pkg, out string }
	var targets []target
	for _, name := range services {
		targets = append(targets, target{filepath.Join(s.opts.repo, "services", name), "./cmd/" + name, name})
	}
	// The helper is this very program when the bench runs from it
	// (tools/bench/run-bench.sh); otherwise it is built like the services.
	if self, err := os.Executable(); err == nil && filepath.Base(self) == "benchhelper" {
		if err := os.MkdirAll(s.bin, 0o755); err != nil {
			return fmt.Errorf("creating %s: %w", s.bin, err)
		}
		if err := os.Symlink(self, filepath.Join(s.bin, "benchhelper")); err != nil {
			return fmt.Errorf("linking the helper: %w", err)
		}
	} else {
		targets = append(targets, target{filepath.Join(s.opts.repo, "tools"), "./internal/bench/benchhelper", "benchhelper"})
	}
	for _, t := range targets {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(s.bin, t.out), t.pkg)
		cmd.Dir = t.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", t.out, err, out)
		}
	}
	return nil
}

func (s *stack) start(name, bin string, args, env []string) error {
	logPath := filepath.Join(s.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating %s: %w", logPath, err)
	}
	// Not CommandContext: the stack stops its children itself, gently
	// first, in Close.
	cmd := exec.Command(bin, args...) //nolint:noctx,gosec // our own freshly built binaries
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		_ = f.Close()
		close(c.done)
	}()
	s.children = append(s.children, c)
	return nil
}

// waitHTTP polls url until it answers 200, the child exits, or the time
// is up.
func (s *stack) waitHTTP(ctx context.Context, name, url string, limit time.Duration) error {
	var c *child
	for _, x := range s.children {
		if x.name == name {
			c = x
		}
	}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := client.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if c != nil {
			select {
			case <-c.done:
				return fmt.Errorf("%s exited while starting: %v (log: %s)", name, c.err, c.log)
			default:
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready at %s within %s (log: %s)", name, url, limit, s.logOf(name))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *stack) logOf(name string) string {
	for _, c := range s.children {
		if c.name == name {
			return c.log
		}
	}
	return ""
}

// seed imports the seed file and any generated movies through the catalog
// as the administrator, and returns how many movies the catalogue holds.
func (s *stack) seed(ctx context.Context, authAddr, catalogAddr string, logf func(string, ...any)) (int, error) {
	token, err := devstack.AdminToken(ctx, authAddr, s.email, s.password)
	if err != nil {
		return 0, err
	}
	conn, err := importer.Dial(catalogAddr, importer.DialConfig{Token: token})
	if err != nil {
		return 0, fmt.Errorf("dialing catalog: %w", err)
	}
	defer conn.Close()
	client := catalogv1.NewCatalogServiceClient(conn)
	total := 0
	if s.opts.seedFile != "" {
		f, err := os.Open(s.opts.seedFile)
		if err != nil {
			return 0, fmt.Errorf("opening the seed file: %w", err)
		}
		defer f.Close()
		r, err := moviedata.NewReader(moviedata.FormatIMDB, f, moviedata.Options{})
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", s.opts.seedFile, err)
		}
		sum, err := importer.New(client, seedImport).Run(ctx, r)
		if err != nil {
			return 0, fmt.Errorf("importing %s: %w", s.opts.seedFile, err)
		}
		total += int(sum.Inserted + sum.Skipped)
		logf("imported %s: %d movies", filepath.Base(s.opts.seedFile), sum.Inserted)
	}
	if s.opts.generate > 0 {
		profile, err := generator.DefaultProfile()
		if err != nil {
			return 0, fmt.Errorf("loading generator profile: %w", err)
		}
		gen, err := generator.New(profile, generator.Options{Seed: 1})
		if err != nil {
			return 0, fmt.Errorf("creating generator: %w", err)
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(gen.WriteNDJSON(ctx, pw, 0, uint64(s.opts.generate))) }()
		r, err := moviedata.NewReader(moviedata.FormatWikipedia, pr, moviedata.Options{})
		if err != nil {
			_ = pr.Close()
			return 0, fmt.Errorf("reading generated movies: %w", err)
		}
		sum, err := importer.New(client, seedImport).Run(ctx, r)
		_ = pr.Close()
		if err != nil {
			return 0, fmt.Errorf("importing generated movies: %w", err)
		}
		total += int(sum.Inserted + sum.Skipped)
		logf("imported %d generated movies", sum.Inserted)
	}
	return total, nil
}

// seedImport is how the bench seeds: one batch of 50 at a time, because
// the embedded engine serialises writes anyway and concurrent batches of 100
// outlast the catalog's write deadline on a busy machine.
var seedImport = importer.Config{BatchSize: 50, Workers: 1}

// waitIndexed polls search until it counts want movies.
func waitIndexed(ctx context.Context, rest string, want int, limit time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	got := int64(-1)
	for time.Now().Before(deadline) {
		var out struct {
			TotalSize json.Number `json:"totalSize"`
		}
		if err := getJSON(ctx, client, rest+"/v1/search/movies?page_size=1", nil, &out); err == nil {
			got, _ = out.TotalSize.Int64()
			if got >= int64(want) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("search counts %d of %d movies after %s", got, want, limit)
}

// startBare runs the bare server as a process of its own, pinned like the
// services, writing resp.
func (s *stack) startBare(ctx context.Context, resp baseline.BareResponse) (string, Proc, func(), error) {
	body := filepath.Join(s.dir, "bare-body")
	hdr := filepath.Join(s.dir, "bare-header.json")
	hb, _ := json.Marshal(resp.Header)
	if err := os.WriteFile(body, resp.Body, 0o600); err != nil {
		return "", Proc{}, nil, fmt.Errorf("writing %s: %w", body, err)
	}
	if err := os.WriteFile(hdr, hb, 0o600); err != nil {
		return "", Proc{}, nil, fmt.Errorf("writing %s: %w", hdr, err)
	}
	return s.startHelper(ctx, "bare", []string{"bare", "-body", body, "-header", hdr}, func(addr string) error {
		return waitTCP(ctx, addr, 30*time.Second)
	}, "http://")
}

// startEngine runs a second engine, for the curve, on a directory of its
// own.
func (s *stack) startEngine(ctx context.Context) (string, string, Proc, func(), error) {
	dir := filepath.Join(s.dir, "data", "engine-curve")
	base, p, stop, err := s.startHelper(ctx, "engine-curve", []string{"engine", "-dir", dir}, func(addr string) error {
		return waitTCP(ctx, addr, time.Minute)
	}, "mongodb://")
	if err != nil {
		return "", "", Proc{}, nil, err
	}
	stopAll := func() { stop(); _ = os.RemoveAll(dir) }
	return base + "/", dir, p, stopAll, nil
}

func (s *stack) startHelper(ctx context.Context, name string, args []string, wait func(string) error, scheme string) (string, Proc, func(), error) {
	ports, err := freePorts(1)
	if err != nil {
		return "", Proc{}, nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(ports[0])
	if err := s.start(name, filepath.Join(s.bin, "benchhelper"), append(args, "-addr", addr), nil); err != nil {
		return "", Proc{}, nil, err
	}
	c := s.children[len(s.children)-1]
	s.children = s.children[:len(s.children)-1] // stopped by its own stop, not with the stack
	stop := func() { stopChild(c) }
	if err := wait(addr); err != nil {
		stop()
		return "", Proc{}, nil, fmt.Errorf("%s: %w (log: %s)", name, err, c.log)
	}
	if cpus := s.cpusFor(name); cpus != "" {
		if err := pin(c.cmd.Process.Pid, cpus); err != nil {
			stop()
			return "", Proc{}, nil, err
		}
	}
	return scheme + addr, Proc{Name: name, PID: c.cmd.Process.Pid}, stop, nil
}

// cpusFor is the CPU list a process of the stack is pinned to ("" for
// none): the engines to the engine CPUs, everything else (the services and
// the bare server) to the service CPUs.
func (s *stack) cpusFor(name string) string {
	if strings.HasPrefix(name, "engine") {
		return s.opts.engineCPUs
	}
	return s.opts.serviceCPUs
}

// Close stops the services in reverse order (SIGTERM, then SIGKILL after a
// grace period) and removes the run directory unless -keep.
func (s *stack) Close() error {
	for i := len(s.children) - 1; i >= 0; i-- {
		stopChild(s.children[i])
	}
	s.children = nil
	if s.opts.keep {
		fmt.Fprintf(s.opts.logs, "bench: kept %s\n", s.dir)
		return nil
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("removing %s: %w", s.dir, err)
	}
	return nil
}

func stopChild(c *child) {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// tail prints the end of each child's log after a failed start.
func (s *stack) tail() {
	for _, c := range s.children {
		b, err := os.ReadFile(c.log)
		if err != nil || len(b) == 0 {
			continue
		}
		if len(b) > 2000 {
			b = b[len(b)-2000:]
		}
		fmt.Fprintf(s.opts.logs, "bench: --- %s log (end) ---\n%s\n", c.name, bytes.TrimSpace(b))
	}
}

// findRepo walks up from the working directory to the one holding go.work.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory: run from the repository or pass -repo")
		}
		dir = parent
	}
}

// freePorts reserves n distinct free loopback ports by binding them all at
// once, then releases them for the services to take.
func freePorts(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func waitTCP(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var d net.Dialer
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := d.DialContext(cctx, "tcp", addr)
		cancel()
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %s after %s", addr, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// secret returns n random bytes in standard base64 (the form auth expects
// for its key-encryption key).
func secret(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return base64.StdEncoding.EncodeToString(b)
}

// otherCPUs is the complement of list among this machine's CPUs, for the
// load generator ("0" on two CPUs gives "1").
func otherCPUs(list string) string {
	set, err := parseCPUList(list)
	if err != nil {
		return ""
	}
	var out []string
	for c := range machineCPUs() {
		if !set.IsSet(c) {
			out = append(out, strconv.Itoa(c))
		}
	}
	return strings.Join(out, ",")
}

// Package devstack runs the whole of Marquee in one process for development:
// an embedded FerretDB, then auth, catalog, search and the gateway, each on
// its own loopback port and talking real gRPC to the others, exactly as they
// run apart in production. On the first start it seeds the catalogue and
// creates an administrator; later starts reuse the data directory.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	authapp "github.com/marquee-dev/marquee/services/auth/app"
	catalogapp "github.com/marquee-dev/marquee/services/catalog/app"
	gatewayapp "github.com/marquee-dev/marquee/services/gateway/app"
	"github.com/marquee-dev/marquee/services/platform/config"
	"github.com/marquee-dev/marquee/services/platform/ferretdb"
	"github.com/marquee-dev/marquee/services/platform/grpcclient"
	"github.com/marquee-dev/marquee/services/platform/logging"
	searchapp "github.com/marquee-dev/marquee/services/search/app"
)

// Services are the services the stack can run, in start order.
var Services = []string{"auth", "catalog", "search", "gateway"}

// Options configure a dev stack run.
type Options struct {
	// Service, when set, runs only that service (for per-service
	// measurements); the others are expected at their configured addresses.
	Service string
	// Args are --config/--set arguments applied to every service's config.
	Args []string
	// Out receives the human-readable banner; logs go to Logs.
	Out  io.Writer
	Logs io.Writer
	// Host is the loopback host every listener binds (127.0.0.1).
	Host string
	// Ports override the default ports (tests use free ones).
	Ports Ports
	// SeedFile is the catalogue loaded on the first start (data/imdb.json).
	SeedFile string
	// Ready, when set, is called once every started service is serving.
	Ready func(Addrs)
}

// Ports are the stack's listening ports.
type Ports struct {
	Mongo, Gateway, GatewayAdmin, Catalog, CatalogAdmin, Search, SearchAdmin, Auth, AuthAdmin, Stack int
}

// DefaultPorts are the documented loopback ports.
func DefaultPorts() Ports {
	return Ports{
		Mongo: 27017, Gateway: 8080, GatewayAdmin: 9190,
		Catalog: 9091, CatalogAdmin: 9191, Search: 9092, SearchAdmin: 9192,
		Auth: 9093, AuthAdmin: 9193, Stack: 9199,
	}
}

// Addrs are the resolved addresses of a running stack.
type Addrs struct {
	REST, Catalog, Search, Auth, Mongo, Ready string
	Metrics                                   map[string]string
	AdminEmail                                string
}

// Run starts the stack and blocks until ctx ends, then stops every service
// and the engine, in reverse order.
func Run(ctx context.Context, opts Options) error {
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Ports == (Ports{}) {
		opts.Ports = DefaultPorts()
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
	}
	if opts.Logs == nil {
		opts.Logs = os.Stderr
	}
	if opts.Service != "" && !contains(Services, opts.Service) {
		return fmt.Errorf("unknown service %q: want one of %v", opts.Service, Services)
	}

	common := config.DefaultCommon()
	if err := config.Load(&common, argsFor("", opts.Args)); err != nil {
		return fmt.Errorf("loading config: %w", err)
	}
	dataDir, err := filepath.Abs(common.DataDir)
	if err != nil {
		return fmt.Errorf("resolving data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("creating data dir: %w", err)
	}
	secrets, err := loadSecrets(filepath.Join(dataDir, "dev-secrets.json"))
	if err != nil {
		return err
	}
	logger := logging.New(opts.Logs, common.Log)

	a := opts.addrs()
	run := func(name string) bool { return opts.Service == "" || opts.Service == name }
	if err := checkPorts(opts, run); err != nil {
		return err
	}

	g, ctx := errgroup.WithContext(ctx)
	var mongoURI string
	if run("auth") || run("catalog") {
		dir := filepath.Join(dataDir, "ferretdb")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("creating engine dir: %w", err)
		}
		fdb, err := ferretdb.Start(ctx, dir, a.Mongo)
		if err != nil {
			return fmt.Errorf("starting the embedded engine on %s: %w", a.Mongo, err)
		}
		mongoURI = fdb.URI
		defer fdb.Wait()
	}

	cfgs, err := opts.configs(common, dataDir, mongoURI, secrets)
	if err != nil {
		return err
	}

	// Each service runs until ctx ends; its own logger names it.
	start := func(name string, fn func(context.Context) error) {
		if !run(name) {
			return
		}
		g.Go(func() error {
			if err := fn(ctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		})
	}
	// Each service names itself in its log records.
	start("auth", func(ctx context.Context) error {
		return authapp.Run(ctx, cfgs.auth, authapp.WithLogger(logger))
	})
	start("catalog", func(ctx context.Context) error {
		return catalogapp.Run(ctx, cfgs.catalog, catalogapp.WithLogger(logger))
	})
	start("search", func(ctx context.Context) error {
		return searchapp.Run(ctx, cfgs.search, searchapp.WithLogger(logger))
	})
	start("gateway", func(ctx context.Context) error {
		return gatewayapp.Run(ctx, cfgs.gateway, gatewayapp.WithLogger(logger))
	})

	// The stack's own readiness: every service it started is serving.
	ready := &readiness{}
	g.Go(func() error { return serveStackReady(ctx, a.Ready, ready) })
	g.Go(func() error {
		if err := waitServing(ctx, opts, run); err != nil {
			return err
		}
		if run("catalog") && run("auth") {
			// A stack that cannot load its seed is not ready: say so and stop
			// rather than serve a partial catalogue.
			if err := seed(ctx, opts, a, cfgs, secrets, logger); err != nil {
				return fmt.Errorf("seeding the catalogue: %w", err)
			}
		}
		ready.set()
		printBanner(opts.Out, opts, a, secrets)
		if opts.Ready != nil {
			opts.Ready(a)
		}
		return nil
	})
	return g.Wait()
}

func (o Options) addr(port int) string { return net.JoinHostPort(o.Host, fmt.Sprint(port)) }

func (o Options) addrs() Addrs {
	p := o.Ports
	return Addrs{
		REST:    "http://" + o.addr(p.Gateway),
		Catalog: o.addr(p.Catalog),
		Search:  o.addr(p.Search),
		Auth:    o.addr(p.Auth),
		Mongo:   o.addr(p.Mongo),
		Ready:   o.addr(p.Stack),
		Metrics: map[string]string{
			"gateway": "http://" + o.addr(p.GatewayAdmin) + "/metrics",
			"catalog": "http://" + o.addr(p.CatalogAdmin) + "/metrics",
			"search":  "http://" + o.addr(p.SearchAdmin) + "/metrics",
			"auth":    "http://" + o.addr(p.AuthAdmin) + "/metrics",
		},
	}
}

type configs struct {
	auth    authapp.Config
	catalog catalogapp.Config
	search  searchapp.Config
	gateway gatewayapp.Config
}

// configs builds each service's config: the service's defaults, then the
// dev stack's loopback wiring and secrets, then the user's environment and
// flags on top, so any MARQUEE_* variable still wins.
func (o Options) configs(common config.Common, dataDir, mongoURI string, s *secrets) (configs, error) {
	var c configs
	grpcTarget := func(port int) string { return "passthrough:///" + o.addr(port) }
	clients := []string{"catalog=" + s.CatalogSecret, "search=" + s.SearchSecret, "gateway=" + s.GatewaySecret}

	c.auth = authapp.DefaultConfig()
	c.auth.Common = common
	c.auth.GRPCAddr = o.addr(o.Ports.Auth)
	c.auth.AdminAddr = o.addr(o.Ports.AuthAdmin)
	c.auth.Mongo.URI = mongoURI
	c.auth.KeyEncryptionKey = s.KeyEncryptionKey
	c.auth.ServiceClients = clients
	c.auth.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	c.auth.AdminEmail = envOr("MARQUEE_ADMIN_EMAIL", "admin@marquee.local")
	c.auth.AdminPassword = envOr("MARQUEE_ADMIN_PASSWORD", s.AdminPassword)

	c.catalog = catalogapp.DefaultConfig()
	c.catalog.Common = common
	c.catalog.GRPCAddr = o.addr(o.Ports.Catalog)
	c.catalog.AdminAddr = o.addr(o.Ports.CatalogAdmin)
	c.catalog.Mongo.URI = mongoURI
	c.catalog.AuthAddr = grpcTarget(o.Ports.Auth)
	c.catalog.ClientSecret = s.CatalogSecret
	c.catalog.PageTokenKey = s.PageTokenKey
	c.catalog.MigrateOnStart = true

	c.search = searchapp.DefaultConfig()
	c.search.Common = common
	c.search.Search.GRPCAddr = o.addr(o.Ports.Search)
	c.search.Search.AdminAddr = o.addr(o.Ports.SearchAdmin)
	c.search.Search.IndexDir = filepath.Join(dataDir, "search")
	c.search.Search.CatalogAddr = grpcTarget(o.Ports.Catalog)
	c.search.Search.AuthAddr = grpcTarget(o.Ports.Auth)
	c.search.Search.ClientSecret = s.SearchSecret
	c.search.Search.PageTokenSecret = s.PageTokenKey

	c.gateway = gatewayapp.DefaultConfig()
	c.gateway.Common = common
	c.gateway.HTTPAddr = o.addr(o.Ports.Gateway)
	c.gateway.AdminAddr = o.addr(o.Ports.GatewayAdmin)
	c.gateway.CatalogAddr = grpcTarget(o.Ports.Catalog)
	c.gateway.SearchAddr = grpcTarget(o.Ports.Search)
	c.gateway.AuthAddr = grpcTarget(o.Ports.Auth)
	c.gateway.ClientSecret = s.GatewaySecret

	for name, cfg := range map[string]any{"auth": &c.auth, "catalog": &c.catalog, "search": &c.search, "gateway": &c.gateway} {
		if err := config.Load(cfg, argsFor(name, o.Args)); err != nil {
			return c, fmt.Errorf("loading %s config: %w", name, err)
		}
	}
	return c, nil
}

// checkPorts fails early, naming the port, when one is taken: a half-started
// stack is harder to read than a clear refusal.
func checkPorts(o Options, run func(string) bool) error {
	p := o.Ports
	type want struct {
		port int
		what string
		on   bool
	}
	for _, w := range []want{
		{p.Mongo, "embedded engine", run("auth") || run("catalog")},
		{p.Auth, "auth gRPC", run("auth")}, {p.AuthAdmin, "auth admin", run("auth")},
		{p.Catalog, "catalog gRPC", run("catalog")}, {p.CatalogAdmin, "catalog admin", run("catalog")},
		{p.Search, "search gRPC", run("search")}, {p.SearchAdmin, "search admin", run("search")},
		{p.Gateway, "gateway REST", run("gateway")}, {p.GatewayAdmin, "gateway admin", run("gateway")},
		{p.Stack, "dev stack readiness", true},
	} {
		if !w.on {
			continue
		}
		l, err := net.Listen("tcp", o.addr(w.port))
		if err != nil {
			return fmt.Errorf("port %d (%s) is in use: stop what holds it or choose another port with --set/MARQUEE_* (%w)", w.port, w.what, err)
		}
		_ = l.Close()
	}
	return nil
}

// waitServing polls each started service's gRPC health (and the gateway's
// /readyz) until all serve or ctx ends.
func waitServing(ctx context.Context, o Options, run func(string) bool) error {
	deadline := time.Now().Add(5 * time.Minute)
	for _, svc := range []struct {
		name string
		port int
	}{{"auth", o.Ports.Auth}, {"catalog", o.Ports.Catalog}, {"search", o.Ports.Search}} {
		if !run(svc.name) {
			continue
		}
		conn, err := grpcclient.Dial("passthrough:///"+o.addr(svc.port), nil)
		if err != nil {
			return fmt.Errorf("dialing %s: %w", svc.name, err)
		}
		hc := healthpb.NewHealthClient(conn)
		for {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{})
			cancel()
			if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				break
			}
			if err := pause(ctx, deadline, svc.name); err != nil {
				_ = conn.Close()
				return err
			}
		}
		_ = conn.Close()
	}
	if run("gateway") {
		url := "http://" + o.addr(o.Ports.Gateway) + "/readyz"
		for {
			resp, err := http.Get(url) //nolint:noctx // loopback probe with a bounded loop
			if err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if err := pause(ctx, deadline, "gateway"); err != nil {
				return err
			}
		}
	}
	return nil
}

func pause(ctx context.Context, deadline time.Time, name string) error {
	if time.Now().After(deadline) {
		return fmt.Errorf("%s did not become ready within 5 minutes", name)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(100 * time.Millisecond):
		return nil
	}
}

type readiness struct {
	mu    sync.Mutex
	ready bool
}

func (r *readiness) set() { r.mu.Lock(); r.ready = true; r.mu.Unlock() }
func (r *readiness) get() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready
}

// serveStackReady answers /readyz with 200 once every started service is
// serving, so scripts can wait for the whole stack with one probe.
func serveStackReady(ctx context.Context, addr string, r *readiness) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !r.get() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving stack readiness: %w", err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return srv.Shutdown(sctx) //nolint:contextcheck // the parent is done
	}
}

func printBanner(w io.Writer, o Options, a Addrs, s *secrets) {
	run := func(name string) bool { return o.Service == "" || o.Service == name }
	fmt.Fprintln(w, "\nMarquee is running.")
	if run("gateway") {
		fmt.Fprintf(w, "  REST      %s/v1/movies\n", a.REST)
		fmt.Fprintf(w, "  docs      %s/docs   (OpenAPI: %s/openapi.json)\n", a.REST, a.REST)
	}
	for _, svc := range []struct{ name, addr string }{{"catalog", a.Catalog}, {"search", a.Search}, {"auth", a.Auth}} {
		if run(svc.name) {
			fmt.Fprintf(w, "  gRPC      %-8s %s   (grpcurl -plaintext %s list)\n", svc.name, svc.addr, svc.addr)
		}
	}
	for _, name := range Services {
		if run(name) {
			fmt.Fprintf(w, "  metrics   %-8s %s\n", name, a.Metrics[name])
		}
	}
	fmt.Fprintf(w, "  ready     http://%s/readyz\n", a.Ready)
	if run("auth") {
		fmt.Fprintf(w, "  admin     %s\n", envOr("MARQUEE_ADMIN_EMAIL", "admin@marquee.local"))
		if s.showPassword && os.Getenv("MARQUEE_ADMIN_PASSWORD") == "" {
			fmt.Fprintf(w, "  password  %s   (generated now and shown once; set MARQUEE_ADMIN_PASSWORD to choose one)\n", s.AdminPassword)
		}
	}
	fmt.Fprintln(w, "Ctrl-C stops everything.")
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// argsFor keeps the --set flags meant for service (its own "service." keys and
// the shared ones) and every other argument: each service's config knows only
// its own keys, and the stack's --set list mixes them all.
func argsFor(service string, args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if args[i] != "--set" || i+1 == len(args) {
			out = append(out, args[i])
			continue
		}
		key, _, _ := strings.Cut(args[i+1], "=")
		owner, _, nested := strings.Cut(key, ".")
		if !nested || !contains(Services, owner) || owner == service {
			out = append(out, args[i], args[i+1])
		}
		i++
	}
	return out
}

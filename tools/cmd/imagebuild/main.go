// Command imagebuild builds the container image of one Marquee service offline (no container runtime, no
// registry) and writes it as a tarball that is both an OCI image layout archive and a `docker save` archive.
//
// Usage (the Makefile's `make images` runs it for every service after building its static binary):
//
//	go run ./tools/cmd/imagebuild -name catalog -binary bin/catalog -out dist/catalog.tar
//
// Load or push the result with `docker load -i dist/catalog.tar`, `podman load -i ...`,
// `skopeo copy oci-archive:dist/catalog.tar docker://REGISTRY/...` or `crane push dist/catalog.tar REF`
// (docs/operations.md, "Images").
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/marquee-dev/marquee/tools/deploy/ociimage"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

type labelFlags map[string]string

func (l labelFlags) String() string { return fmt.Sprint(map[string]string(l)) }

func (l labelFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("label %q is not key=value", v)
	}
	l[k] = val
	return nil
}

func run(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := ociimage.Options{Labels: labelFlags{}}
	out := fs.String("out", "", "output tarball (required)")
	fs.StringVar(&opts.Name, "name", "", "service name; the binary is installed as /marquee/<name> (required)")
	fs.StringVar(&opts.Binary, "binary", "", "static (CGO_ENABLED=0) linux binary of the service (required)")
	fs.StringVar(&opts.CABundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM CA bundle to install")
	fs.StringVar(&opts.Repository, "repository", "ghcr.io/marquee-dev/marquee", "image repository prefix")
	fs.StringVar(&opts.Tag, "tag", envOr(getenv, "MARQUEE_VERSION", "0.1.0"), "image tag (never latest; default $MARQUEE_VERSION or 0.1.0)")
	fs.StringVar(&opts.Revision, "revision", getenv("MARQUEE_REVISION"), "source revision label (default $MARQUEE_REVISION)")
	fs.StringVar(&opts.Architecture, "arch", runtime.GOARCH, "architecture of the binary (amd64 or arm64)")
	fs.Var(labelFlags(opts.Labels), "label", "extra image label key=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || opts.Name == "" || opts.Binary == "" {
		fs.Usage()
		return errors.New("-name, -binary and -out are required")
	}
	opts.OS = "linux"
	created, err := sourceDateEpoch(getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	opts.Created = created
	res, err := ociimage.Build(opts, *out)
	if err != nil {
		return fmt.Errorf("building %s: %w", opts.Name, err)
	}
	fmt.Fprintf(stdout, "%s %s@%s\n", *out, res.Reference, res.Digest)
	return nil
}

// sourceDateEpoch returns the time the image is stamped with: SOURCE_DATE_EPOCH when set (reproducible builds),
// else the Unix epoch, so that a build depends only on its inputs.
func sourceDateEpoch(v string) (time.Time, error) {
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing SOURCE_DATE_EPOCH %q: %w", v, err)
	}
	return time.Unix(secs, 0).UTC(), nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// buildHello compiles a tiny static program, standing in for a service binary.
func buildHello(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from the image\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the test binary: %v", err)
	}
	bin := filepath.Join(dir, "hello")
	cmd := exec.Command(goBin, "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the test binary: %v\n%s", err, out)
	}
	return bin
}

func noEnv(string) string { return "" }

// TestImageTarball builds an image with the command line the Makefile uses and inspects the tarball through both
// of its faces: the `docker save` manifest and the OCI image layout.
func TestImageTarball(t *testing.T) {
	bin := buildHello(t)
	out := filepath.Join(t.TempDir(), "dist", "hello.tar")
	var stdout bytes.Buffer
	args := []string{"-name", "hello", "-binary", bin, "-out", out}
	if err := run(args, &stdout, io.Discard, noEnv); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "ghcr.io/marquee-dev/marquee/hello:0.1.0@sha256:") {
		t.Errorf("output %q does not name the image and its digest", stdout.String())
	}

	img, err := tarball.ImageFromPath(out, nil)
	if err != nil {
		t.Fatalf("reading the docker-save face: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532 (non-root)", cf.Config.User)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/marquee/hello"}) || len(cf.Config.Cmd) != 0 {
		t.Errorf("entrypoint %v cmd %v, want [/marquee/hello] and no cmd", cf.Config.Entrypoint, cf.Config.Cmd)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s", cf.OS, cf.Architecture)
	}
	for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.version"} {
		if cf.Config.Labels[l] == "" {
			t.Errorf("label %s missing", l)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 2 {
		t.Errorf("%d layers, want 2 (base files, binary)", len(layers))
	}

	files := flatten(t, img)
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := files["marquee/hello"]
	if !ok || !bytes.Equal(got.data, want) || got.mode&0o111 == 0 || got.uid != 0 {
		t.Errorf("/marquee/hello is missing, differs from the binary, is not executable or not root-owned")
	}
	if ca, ok := files["etc/ssl/certs/ca-certificates.crt"]; !ok || !bytes.Contains(ca.data, []byte("BEGIN CERTIFICATE")) {
		t.Errorf("no CA bundle at /etc/ssl/certs/ca-certificates.crt")
	}
	if pw := files["etc/passwd"]; !bytes.Contains(pw.data, []byte("nonroot:x:65532:65532:")) {
		t.Errorf("/etc/passwd lacks the non-root user")
	}
	for name := range files {
		base := filepath.Base(name)
		if strings.HasPrefix(name, "bin/") || strings.HasPrefix(name, "usr/") || strings.HasPrefix(name, "sbin/") ||
			slices.Contains([]string{"sh", "bash", "ash", "dash", "busybox"}, base) {
			t.Errorf("the image holds %s: it must carry no shell or system binaries", name)
		}
	}

	// The OCI face: extract the archive and read it as an image layout.
	dir := t.TempDir()
	extract(t, out, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("reading the OCI layout face: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].MediaType != types.OCIManifestSchema1 {
		t.Fatalf("the OCI index does not hold one OCI image manifest: %+v", im.Manifests)
	}
	wantDigest := im.Manifests[0].Digest
	if !strings.Contains(stdout.String(), wantDigest.String()) {
		t.Errorf("the printed digest is not the OCI manifest's %s", wantDigest)
	}
	if im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "0.1.0" {
		t.Errorf("the OCI index does not name the tag: %v", im.Manifests[0].Annotations)
	}
	ociImg, err := idx.Image(wantDigest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(ociImg); err != nil {
		t.Errorf("the OCI face's blobs do not match their digests: %v", err)
	}
	// Both faces describe the same config.
	c1, err1 := img.ConfigName()
	c2, err2 := ociImg.ConfigName()
	if err1 != nil || err2 != nil || c1 != c2 {
		t.Errorf("the docker-save face's config %s differs from the OCI face's %s", c1, c2)
	}
	if mt, err := ociImg.MediaType(); err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %v (%v), want OCI", mt, err)
	}

	// The binary runs from the extracted image (the host is linux like the image).
	if runtime.GOOS == "linux" {
		exe := filepath.Join(t.TempDir(), "hello")
		if err := os.WriteFile(exe, got.data, 0o755); err != nil {
			t.Fatal(err)
		}
		outp, err := exec.Command(exe).Output()
		if err != nil || strings.TrimSpace(string(outp)) != "hello from the image" {
			t.Errorf("the image's binary does not run: %v %q", err, outp)
		}
	}

	// Reproducible: the same inputs give the same bytes.
	again := filepath.Join(t.TempDir(), "again.tar")
	if err := run([]string{"-name", "hello", "-binary", bin, "-out", again}, io.Discard, io.Discard, noEnv); err != nil {
		t.Fatal(err)
	}
	if sum(t, out) != sum(t, again) {
		t.Errorf("two builds of the same binary differ")
	}
}

// TestImageRejects checks the builder refuses what would not run or not be traceable.
func TestImageRejects(t *testing.T) {
	bin := buildHello(t)
	dir := t.TempDir()
	text := filepath.Join(dir, "script")
	if err := os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("a dynamically linked system binary is needed: %v", err)
	}
	sh, err = filepath.EvalSymlinks(sh)
	if err != nil {
		t.Fatal(err)
	}
	noPEM := filepath.Join(dir, "empty.crt")
	if err := os.WriteFile(noPEM, []byte("nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "x.tar")
	cases := map[string]struct {
		args    []string
		mention string
	}{
		"not ELF":            {[]string{"-name", "x", "-binary", text, "-out", out}, "ELF"},
		"dynamically linked": {[]string{"-name", "x", "-binary", sh, "-out", out}, "dynamically linked"},
		"latest":             {[]string{"-name", "x", "-binary", bin, "-out", out, "-tag", "latest"}, "tag"},
		"no CA":              {[]string{"-name", "x", "-binary", bin, "-out", out, "-ca-bundle", noPEM}, "CA bundle"},
		"missing flags":      {[]string{"-name", "x"}, "required"},
		"bad name":           {[]string{"-name", "Cat/alog", "-binary", bin, "-out", out}, "service name"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := run(c.args, io.Discard, io.Discard, noEnv)
			if err == nil || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("want an error mentioning %q, got %v", c.mention, err)
			}
		})
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused build left %s behind", out)
	}
}

type file struct {
	data     []byte
	mode     int64
	uid, gid int
}

// flatten reads the image's merged filesystem.
func flatten(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimPrefix(h.Name, "/")] = file{data: data, mode: h.Mode, uid: h.Uid, gid: h.Gid}
	}
}

func extract(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

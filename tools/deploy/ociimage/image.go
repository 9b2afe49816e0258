// Package ociimage builds the container image of a Marquee service without a container runtime or registry: an
// empty base, the CA bundle, passwd/group entries for the non-root user and the service's static binary, written
// as one tarball that is both an OCI image layout archive (index.json, blobs/) and a `docker save` archive
// (manifest.json), so `docker load`, `podman load`, `skopeo copy oci-archive:` and `crane push` all read it.
//
// The build is reproducible: every timestamp is fixed (SOURCE_DATE_EPOCH or the Unix epoch), so the same binary
// gives the same digests.
package ociimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user every image runs as (the conventional "nonroot" of distroless images).
const (
	UID = 65532
	GID = 65532
)

// Options describe one image.
type Options struct {
	// Name is the service (catalog, search, auth, gateway); the binary is installed as /marquee/<Name>.
	Name string
	// Binary is the path of the service's static (CGO_ENABLED=0) Linux binary.
	Binary string
	// CABundle is the PEM bundle installed as /etc/ssl/certs/ca-certificates.crt.
	CABundle string
	// Repository is the image repository prefix; the image is tagged <Repository>/<Name>:<Tag>.
	Repository string
	// Tag is the image tag (never "latest").
	Tag string
	// OS and Architecture of the binary (and the image), for example linux and amd64.
	OS, Architecture string
	// Created stamps the image config, history and file times.
	Created time.Time
	// Labels are added to the image config (the OCI labels below are always set).
	Labels map[string]string
	// Version and Revision fill org.opencontainers.image.version and .revision.
	Version, Revision string
}

// Result describes a built image.
type Result struct {
	Reference string
	Digest    v1.Hash
	Image     v1.Image
}

// Build builds the image and writes the archive to out.
func Build(opts Options, out string) (*Result, error) {
	img, ref, err := Image(opts)
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("computing the image digest: %w", err)
	}
	if err := WriteArchive(out, ref, img); err != nil {
		return nil, err
	}
	return &Result{Reference: ref.String(), Digest: digest, Image: img}, nil
}

// Image assembles the image in memory.
func Image(opts Options) (v1.Image, name.Tag, error) {
	if err := validate(opts); err != nil {
		return nil, name.Tag{}, err
	}
	ref, err := name.NewTag(strings.TrimSuffix(opts.Repository, "/")+"/"+opts.Name+":"+opts.Tag, name.StrictValidation)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("parsing the image reference: %w", err)
	}
	bin, err := os.ReadFile(opts.Binary)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("reading the binary: %w", err)
	}
	if err := checkStatic(opts.Binary, opts.Architecture); err != nil {
		return nil, name.Tag{}, err
	}
	ca, err := os.ReadFile(opts.CABundle)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("reading the CA bundle: %w", err)
	}
	if !bytes.Contains(ca, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, name.Tag{}, fmt.Errorf("reading the CA bundle: %s holds no PEM certificate", opts.CABundle)
	}
	created := opts.Created.UTC()

	baseTar, err := tarLayer(created, []entry{
		{path: "etc/", mode: 0o755, dir: true},
		{path: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", GID))},
		{path: "etc/nsswitch.conf", mode: 0o644, data: []byte("hosts: files dns\n")},
		{path: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf(
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, GID))},
		{path: "etc/ssl/", mode: 0o755, dir: true},
		{path: "etc/ssl/certs/", mode: 0o755, dir: true},
		{path: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{path: "home/", mode: 0o755, dir: true},
		{path: "home/nonroot/", mode: 0o700, dir: true, uid: UID, gid: GID},
		{path: "tmp/", mode: 0o1777, dir: true},
	})
	if err != nil {
		return nil, name.Tag{}, err
	}
	appTar, err := tarLayer(created, []entry{
		{path: "marquee/", mode: 0o755, dir: true},
		{path: "marquee/" + opts.Name, mode: 0o755, data: bin},
	})
	if err != nil {
		return nil, name.Tag{}, err
	}
	var layers []mutate.Addendum
	for _, l := range []struct {
		data []byte
		by   string
	}{
		{baseTar, "imagebuild: CA bundle, users and directories"},
		{appTar, "imagebuild: /marquee/" + opts.Name},
	} {
		data := l.data
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, name.Tag{}, fmt.Errorf("building a layer: %w", err)
		}
		layers = append(layers, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: l.by},
		})
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, layers...)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("adding layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("reading the image config: %w", err)
	}
	cf = cf.DeepCopy()
	cf.OS = opts.OS
	cf.Architecture = opts.Architecture
	cf.Created = v1.Time{Time: created}
	cf.Author = "Marquee"
	cf.Config.User = fmt.Sprintf("%d:%d", UID, GID)
	cf.Config.Entrypoint = []string{"/marquee/" + opts.Name}
	cf.Config.Cmd = nil
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/marquee", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "HOME=/home/nonroot"}
	cf.Config.Labels = labels(opts, created)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, name.Tag{}, fmt.Errorf("setting the image config: %w", err)
	}
	return img, ref, nil
}

func validate(opts Options) error {
	var errs []error
	if opts.Name == "" || strings.ContainsAny(opts.Name, "/: ") || strings.ToLower(opts.Name) != opts.Name {
		errs = append(errs, fmt.Errorf("invalid service name %q", opts.Name))
	}
	if opts.Binary == "" {
		errs = append(errs, errors.New("no binary given"))
	}
	if opts.Tag == "" || opts.Tag == "latest" {
		errs = append(errs, fmt.Errorf("invalid tag %q: images carry an immutable version tag", opts.Tag))
	}
	if opts.OS != "linux" {
		errs = append(errs, fmt.Errorf("unsupported OS %q", opts.OS))
	}
	return errors.Join(errs...)
}

// checkStatic makes sure the binary is a statically linked ELF executable for arch: the image has no dynamic
// loader and no libc.
func checkStatic(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("reading the binary %s as ELF: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("the binary %s is dynamically linked: build it with CGO_ENABLED=0", path)
		}
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	if m, ok := want[arch]; !ok {
		return fmt.Errorf("unsupported architecture %q", arch)
	} else if f.Machine != m {
		return fmt.Errorf("the binary %s is built for %s, not %s", path, f.Machine, arch)
	}
	return nil
}

func labels(opts Options, created time.Time) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":       opts.Name,
		"org.opencontainers.image.description": "Marquee " + opts.Name + " service",
		"org.opencontainers.image.source":      "https://github.com/marquee-dev/marquee",
		"org.opencontainers.image.vendor":      "Marquee",
		"org.opencontainers.image.created":     created.Format(time.RFC3339),
		"org.opencontainers.image.version":     opts.Tag,
	}
	if opts.Version != "" {
		l["org.opencontainers.image.version"] = opts.Version
	}
	if opts.Revision != "" {
		l["org.opencontainers.image.revision"] = opts.Revision
	}
	for k, v := range opts.Labels {
		l[k] = v
	}
	return l
}

type entry struct {
	path     string
	mode     int64
	dir      bool
	data     []byte
	uid, gid int
}

// tarLayer writes a layer's uncompressed tar with fixed owners and times.
func tarLayer(mtime time.Time, entries []entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.path,
			Mode:    e.mode,
			ModTime: mtime,
			Uid:     e.uid,
			Gid:     e.gid,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing layer entry %s: %w", e.path, err)
		}
		if !e.dir {
			if _, err := tw.Write(e.data); err != nil {
				return nil, fmt.Errorf("writing layer entry %s: %w", e.path, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("closing a layer: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteArchive writes img as a tarball holding both an OCI image layout (oci-layout, index.json, blobs/sha256)
// and the manifest.json of `docker save`, whose entries point into the same blobs.
func WriteArchive(out string, ref name.Tag, img v1.Image) error {
	manifest, err := img.RawManifest()
	if err != nil {
		return fmt.Errorf("encoding the manifest: %w", err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("computing the manifest digest: %w", err)
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return fmt.Errorf("encoding the config: %w", err)
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return fmt.Errorf("computing the config digest: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("listing layers: %w", err)
	}
	blobs := map[string][]byte{
		blobPath(digest):  manifest,
		blobPath(cfgName): config,
	}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("computing a layer digest: %w", err)
		}
		rc, err := l.Compressed()
		if err != nil {
			return fmt.Errorf("compressing a layer: %w", err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("compressing a layer: %w", err)
		}
		blobs[blobPath(d)] = data
		layerPaths = append(layerPaths, blobPath(d))
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     types.OCIImageIndex,
		"manifests": []any{map[string]any{
			"mediaType": types.OCIManifestSchema1,
			"digest":    digest.String(),
			"size":      len(manifest),
			"annotations": map[string]string{
				"org.opencontainers.image.ref.name": ref.TagStr(),
				"io.containerd.image.name":          ref.String(),
			},
		}},
	})
	if err != nil {
		return fmt.Errorf("encoding index.json: %w", err)
	}
	dockerManifest, err := json.Marshal([]any{map[string]any{
		"Config":   blobPath(cfgName),
		"RepoTags": []string{ref.String()},
		"Layers":   layerPaths,
	}})
	if err != nil {
		return fmt.Errorf("encoding manifest.json: %w", err)
	}

	var mtime time.Time
	if cf, err := img.ConfigFile(); err == nil {
		mtime = cf.Created.Time
	}
	files := map[string][]byte{
		"oci-layout":    []byte(`{"imageLayoutVersion":"1.0.0"}`),
		"index.json":    index,
		"manifest.json": dockerManifest,
	}
	for p, b := range blobs {
		files[p] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(out), err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".imagebuild-*")
	if err != nil {
		return fmt.Errorf("creating the archive: %w", err)
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	dirs := []string{"blobs/", "blobs/sha256/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			tmp.Close()
			return fmt.Errorf("writing the archive: %w", err)
		}
	}
	for _, n := range names {
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n])), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			tmp.Close()
			return fmt.Errorf("writing the archive: %w", err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			tmp.Close()
			return fmt.Errorf("writing the archive: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing the archive: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	return nil
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

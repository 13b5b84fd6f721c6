// Command ociimage writes a one-layer image, FROM scratch, as a tarball
// that `ctr images import` and `docker load` read, without a registry.
//
//	ociimage -tag localhost/x:1 -o x.tar [-entrypoint /a,-b] [-env K=V]... [-user 65532] [-port 8080]... DST=SRC...
//
// SRC may be a file (its content: symlinks are followed) or a directory
// (copied whole). The image is reproducible: files sorted, owners root,
// every time the Unix epoch; the same inputs give the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, ",") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	tag := flag.String("tag", "", "image reference, e.g. localhost/app:1")
	out := flag.String("o", "", "output tarball")
	entrypoint := flag.String("entrypoint", "", "comma-separated entrypoint")
	user := flag.String("user", "", "user (numeric: scratch has no /etc/passwd)")
	workdir := flag.String("workdir", "/", "working directory")
	var env, ports list
	flag.Var(&env, "env", "K=V, repeatable")
	flag.Var(&ports, "port", "exposed TCP port, repeatable")
	flag.Parse()
	if *tag == "" || *out == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*tag, *out, *entrypoint, *user, *workdir, env, ports, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

type entry struct {
	dst, src string
	mode     fs.FileMode
}

func run(tag, out, entrypoint, user, workdir string, env, ports []string, specs []string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	files := map[string]entry{}
	for _, spec := range specs {
		dst, src, ok := strings.Cut(spec, "=")
		if !ok || !strings.HasPrefix(dst, "/") {
			return fmt.Errorf("%q: want /DST=SRC", spec)
		}
		if err := collect(files, path.Clean(dst), src); err != nil {
			return err
		}
	}
	layerTar, err := tarLayer(files)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Env = env
	cfg.Config.User = user
	cfg.Config.WorkingDir = workdir
	if entrypoint != "" {
		cfg.Config.Entrypoint = strings.Split(entrypoint, ",")
	}
	if len(ports) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range ports {
			cfg.Config.ExposedPorts[p+"/tcp"] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return err
	}
	img, err = mutate.CreatedAt(img, v1.Time{Time: time.Unix(0, 0).UTC()})
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s\n", tag, digest)
	return os.Rename(tmp, out)
}

// collect adds SRC at DST: a file, or a directory's whole tree.
func collect(files map[string]entry, dst, src string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		files[dst] = entry{dst, src, info.Mode().Perm()}
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		info, err := os.Stat(p) // follows symlinks
		if err != nil {
			return err
		}
		if !info.IsDir() {
			files[path.Join(dst, filepath.ToSlash(rel))] = entry{path.Join(dst, filepath.ToSlash(rel)), p, info.Mode().Perm()}
		}
		return nil
	})
}

func tarLayer(files map[string]entry) ([]byte, error) {
	dirs := map[string]bool{}
	var names []string
	for dst := range files {
		names = append(names, dst)
		for d := path.Dir(dst); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0).UTC()
	for _, n := range names {
		hdr := &tar.Header{Name: strings.TrimPrefix(n, "/"), ModTime: epoch, Format: tar.FormatPAX}
		if dirs[n] {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			continue
		}
		e := files[n]
		data, err := os.ReadFile(e.src)
		if err != nil {
			return nil, err
		}
		mode := int64(0o644)
		if e.mode&0o111 != 0 {
			mode = 0o755
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, mode, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

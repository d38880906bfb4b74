package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	todogateway "github.com/todo-gateway/todo-gateway"
	"github.com/todo-gateway/todo-gateway/store"
	"github.com/todo-gateway/todo-gateway/store/etcd/etcdtest"
	"github.com/todo-gateway/todo-gateway/store/storetest"
	"github.com/todo-gateway/todo-gateway/tenants"
)

// The documentation the project ships: the README, the pages in docs/,
// and the folders' own READMEs.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"../../README.md", "../../e2e/README.md"}
	pages, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no pages in docs/: %v", err)
	}
	return append(files, pages...)
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
	fence     = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchor is GitHub's id for a heading: lower case, punctuation but - and _
// dropped, spaces as -.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors are the ids of a markdown file's headings (outside code).
func anchors(text string) map[string]bool {
	ids := map[string]bool{}
	for _, m := range mdHeading.FindAllStringSubmatch(fence.ReplaceAllString(text, ""), -1) {
		h := strings.ReplaceAll(m[1], "`", "")
		ids[anchor(h)] = true
	}
	return ids
}

// Every relative link of the documentation leads somewhere: the file
// exists, and a #fragment names a heading of the page it points at.
func TestDocsLinksResolve(t *testing.T) {
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		text := fence.ReplaceAllString(string(data), "")
		for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %q: no such file %s", file, target, dest)
					continue
				}
			}
			if frag == "" || !strings.HasSuffix(dest, ".md") {
				continue
			}
			page, err := os.ReadFile(dest)
			if err != nil {
				t.Fatal(err)
			}
			if !anchors(string(page))[frag] {
				t.Errorf("%s: link %q: %s has no heading #%s", file, target, dest, frag)
			}
		}
	}
}

// Every message docs/troubleshooting.md quotes (the first column's
// `code` spans; … stands for what the message fills in) is in the code
// that writes it, so a message that changes fails here until the page
// follows.
func TestDocsTroubleshootingQuotesTheCode(t *testing.T) {
	page, err := os.ReadFile("../../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	var code strings.Builder
	err = filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "bin" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			code.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	quoted := 0
	for line := range strings.Lines(string(page)) {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "message" {
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[1], -1) {
			quoted++
			for piece := range strings.SplitSeq(m[1], "…") {
				if piece = strings.TrimSpace(piece); len(piece) >= 6 && !strings.Contains(code.String(), piece) {
					t.Errorf("docs/troubleshooting.md quotes %q, which no Go source says (the message changed?)", piece)
				}
			}
		}
	}
	if quoted < 20 {
		t.Errorf("found %d quoted messages in docs/troubleshooting.md, want its tables read", quoted)
	}
}

// configPaths lists the settings a configuration file may hold, by their
// JSON paths ("store.etcd.cache.wait", "tenants[].audience.values"): the
// fields of tenants.Config, recursively. A type that decodes itself
// (UnmarshalJSON: a duration, a map of scopes) is one setting.
func configPaths(t reflect.Type, prefix string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	decodesItself := reflect.PointerTo(t).Implements(reflect.TypeFor[interface{ UnmarshalJSON([]byte) error }]())
	switch {
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		configPaths(t.Elem(), prefix+"[]", out)
		return
	case t.Kind() != reflect.Struct || decodesItself && prefix != "":
		*out = append(*out, prefix)
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && tag == "" {
			configPaths(f.Type, prefix, out)
			continue
		}
		p := tag
		if prefix != "" {
			p = prefix + "." + tag
		}
		configPaths(f.Type, p, out)
	}
}

// documentedPaths reads the settings a page's tables name in their first
// column, each under prefix: "`a.b`, `.c`" is a.b and a.c, "`a.b` /
// `d`" is a.b and a.d.
func documentedPaths(t *testing.T, page, prefix string, table func(header string) bool) []string {
	t.Helper()
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for line := range strings.Lines(string(data)) {
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			in = false
			continue
		}
		first := strings.TrimSpace(cells[1])
		switch {
		case strings.HasPrefix(first, "---"):
			continue
		case !in && table(first):
			in = true
			continue
		case !in:
			continue
		}
		var parent string
		for i, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(first, -1) {
			name := m[1]
			switch {
			case i == 0:
				if j := strings.LastIndex(name, "."); j >= 0 {
					parent = name[:j+1]
				}
			case strings.HasPrefix(name, "."):
				name = parent + name[1:]
			case !strings.Contains(name, "."):
				name = parent + name
			}
			out = append(out, prefix+name)
		}
	}
	if len(out) < 10 {
		t.Fatalf("%s: found %d settings in its tables", page, len(out))
	}
	return out
}

// The configuration reference (docs/configuration.md, and the upstream
// server's settings in docs/upstream.md) names every setting the code
// accepts, and every setting it names is one the code accepts (or a key
// of one that is a map, as scopes.create).
func TestDocsConfigurationReference(t *testing.T) {
	// Accepted only to be refused with a clear message, and named in the
	// row of the settings that replace it.
	refusedOnly := map[string]bool{"tenants[].provider.introspection.client_secret": true}
	var code []string
	configPaths(reflect.TypeFor[tenants.Config](), "", &code)
	accepted := map[string]bool{}
	for _, p := range code {
		accepted[p] = true
	}
	var documented []string
	documented = append(documented, documentedPaths(t, "../../docs/configuration.md", "", func(h string) bool { return h == "field" })...)
	documented = append(documented, documentedPaths(t, "../../docs/configuration.md", "tenants[].", func(h string) bool { return h == "field" })...)
	documented = append(documented, documentedPaths(t, "../../docs/upstream.md", "tenants[].server.", func(h string) bool {
		return h == "`server` field" || h == "field"
	})...)
	named := map[string]bool{}
	for _, d := range documented {
		named[d] = true
	}
	// A row names a setting, a key of a map-like one (scopes.create), or
	// a block of settings (server, identity). Each row of
	// docs/configuration.md is read under both prefixes, since its two
	// tables share a header: a row names a setting when either reading
	// does.
	isSetting := func(p string) bool {
		for q := p; q != ""; {
			if accepted[q] {
				return true
			}
			i := strings.LastIndex(q, ".")
			if i < 0 {
				break
			}
			q = q[:i]
		}
		for _, c := range code {
			if strings.HasPrefix(c, p+".") {
				return true
			}
		}
		return false
	}
	// A setting is named when a row names it, or keys of it (scopes).
	isNamed := func(p string) bool {
		if named[p] || refusedOnly[p] {
			return true
		}
		for d := range named {
			if strings.HasPrefix(d, p+".") {
				return true
			}
		}
		return false
	}
	for i, d := range documented {
		if d == "tenants[]" || isSetting(d) {
			continue
		}
		// A row of the top table read as a tenant's, or the reverse.
		other := strings.TrimPrefix(d, "tenants[].")
		if other == d {
			other = "tenants[]." + d
		}
		if !isSetting(other) {
			t.Errorf("the reference names %q (row %d), which the configuration does not accept", d, i)
		}
	}
	for _, p := range code {
		if !isNamed(p) {
			t.Errorf("the configuration accepts %q, which the reference does not name", p)
		}
	}
}

// The README's quick start on the embedded defaults is run as written: the
// curl commands of its sh block, against the gateway on the embedded
// configuration (on a free port, with the Host header curl would send to
// localhost:3001, since the gateway routes by host), must answer what the
// block shows under each command: the status line, the headers shown, and
// the JSON body.
func TestDocsQuickStartAnswersAsShown(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "**On the embedded defaults**")
	if !ok {
		t.Fatal("the README has no quick start on the embedded defaults")
	}
	_, block, _ := strings.Cut(after, "```sh\n")
	block, _, _ = strings.Cut(block, "```")

	_, base := startEmbeddedDefaults(t)

	type example struct {
		command string
		shown   []string
	}
	var examples []example
	for _, para := range strings.Split(block, "\n\n") {
		var ex example
		for line := range strings.Lines(para) {
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "# ") && ex.command != "":
				ex.shown = append(ex.shown, strings.TrimPrefix(line, "# "))
			case strings.HasPrefix(line, "#"):
			default:
				ex.command += strings.TrimSuffix(strings.TrimSpace(line), "\\") + " "
			}
		}
		if ex.command != "" {
			examples = append(examples, ex)
		}
	}
	if len(examples) != 2 {
		t.Fatalf("found %d commands in the quick start, want its 2 curl commands:\n%s", len(examples), block)
	}
	for _, ex := range examples {
		status, header, body := runCurl(t, ex.command, base)
		shown := ex.shown
		if strings.HasPrefix(shown[0], "HTTP/") {
			if got := "HTTP/1.1 " + status; shown[0] != got {
				t.Errorf("%s\n  shows %q, answered %q", ex.command, shown[0], got)
			}
			shown = shown[1:]
			for len(shown) > 0 && !strings.HasPrefix(shown[0], "{") {
				name, value, _ := strings.Cut(shown[0], ": ")
				if got := header.Get(name); got != value {
					t.Errorf("%s\n  shows %s: %s\n  answered %s: %s", ex.command, name, value, name, got)
				}
				shown = shown[1:]
			}
		}
		var want, got any
		if err := json.Unmarshal([]byte(strings.Join(shown, "")), &want); err != nil {
			t.Fatalf("%s: the body shown is not JSON: %v", ex.command, err)
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s\n  shows  %s\n  answered %s", ex.command, strings.Join(shown, ""), body)
		}
	}
}

// startEmbeddedDefaults starts a gateway on the embedded configuration,
// on free ports and a store of the test's own.
func startEmbeddedDefaults(t *testing.T) (gw *gateway, base string) {
	t.Helper()
	cfg, err := tenants.Parse(todogateway.ExampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store.Bolt.Path = filepath.Join(t.TempDir(), "todos.db")
	cfg.Admin.Listen = "127.0.0.1:0"
	ln, base := listen(t)
	gw, err = startGateway(context.Background(), cfg, "example", 0, slog.New(slog.DiscardHandler), ln)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Shutdown(context.Background()) })
	return gw, base
}

// runCurl runs a curl command line of the docs (-s, -i, -X, -H, -d and a
// URL) as an HTTP request to base, with the Host of the command's URL.
func runCurl(t *testing.T, command, base string) (status string, header http.Header, body string) {
	t.Helper()
	args := regexp.MustCompile(`'[^']*'|\S+`).FindAllString(command, -1)
	if len(args) == 0 || args[0] != "curl" {
		t.Fatalf("not a curl command: %s", command)
	}
	method, target, data := http.MethodGet, "", ""
	hdr := http.Header{}
	for i := 1; i < len(args); i++ {
		a := strings.Trim(args[i], "'")
		switch a {
		case "-s", "-si", "-i":
		case "-X":
			i++
			method = args[i]
		case "-H":
			i++
			k, v, _ := strings.Cut(strings.Trim(args[i], "'"), ": ")
			hdr.Set(k, v)
		case "-d":
			i++
			data = strings.Trim(args[i], "'")
			if method == http.MethodGet {
				method = http.MethodPost
			}
		default:
			target = a
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		t.Fatalf("no URL in %s", command)
	}
	req, err := http.NewRequest(method, base+u.RequestURI(), strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = hdr
	req.Host = u.Host
	resp := do(t, req)
	return resp.Status, resp.Header, strings.TrimSpace(readAll(t, resp))
}

// shBlocks are the sh code blocks of the documentation, by file.
func shBlocks(t *testing.T) map[string][]string {
	t.Helper()
	blocks := map[string][]string{}
	for _, f := range docFiles(t) {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile("(?ms)^```sh\n(.*?)^```").FindAllStringSubmatch(string(text), -1) {
			blocks[f] = append(blocks[f], m[1])
		}
	}
	return blocks
}

// docsShellBlocks names, for each sh block of the documentation (by the
// beginning of its first line), the test that runs it as written, or why
// none runs it.
var docsShellBlocks = map[string]string{
	"GOTOOLCHAIN=go1.27.3 go run ./cmd/todo-gateway serve": "TestDocsQuickStartAnswersAsShown serves the same embedded defaults (on a free port, not :3001)",
	"make test": "run by .ci/run on a fresh clone",
	"# The tenant's protected resource metadata":  "TestDocsQuickStartAnswersAsShown",
	"npx @modelcontextprotocol/inspector@":        "not offline (npx downloads it); TestDocsShellBlocks checks it is the version e2e/browser tests",
	"todo-gateway providers --config":             "a synopsis; providers_cmd_test runs the command",
	`echo "$TOKEN" | todo-gateway token --config`: "a synopsis; token_cmd_test runs the command",
	"$ todo-gateway store copy":                   "TestDocsStoreCopyAsShown",
	"todo-gateway store backup":                   "TestDocsStoreBackupAsShown",
	"make build":                                  "not run: installs into /usr/local and /etc and enables a systemd unit; make service-check verifies the unit",
	"make bench":                                  "not run by make test: minutes of measurement, run on purpose",
	"make e2e":                                    "make test runs make e2e and make inspector-test; make demo serves until Ctrl-C",
}

// explainedBy is the docsShellBlocks key a block's first line begins with.
func explainedBy(first string) (string, bool) {
	for key := range docsShellBlocks {
		if strings.HasPrefix(first, key) {
			return key, true
		}
	}
	return "", false
}

// Every sh block of the documentation is run by a test as written, or
// says here why it is not; a new block must be one or the other.
func TestDocsShellBlocks(t *testing.T) {
	seen := map[string]bool{}
	for file, blocks := range shBlocks(t) {
		for _, block := range blocks {
			first, _, _ := strings.Cut(block, "\n")
			key, ok := explainedBy(first)
			seen[key] = true
			if !ok {
				t.Errorf("%s: the sh block beginning %q is neither run by a test nor explained in docsShellBlocks", file, first)
			}
			if inspector, ok := strings.CutPrefix(first, "npx @modelcontextprotocol/inspector@"); ok {
				var pkg struct {
					Dependencies map[string]string `json:"devDependencies"`
				}
				raw, err := os.ReadFile("../../e2e/package.json")
				if err != nil || json.Unmarshal(raw, &pkg) != nil {
					t.Fatalf("e2e/package.json: %v", err)
				}
				if tested := pkg.Dependencies["@modelcontextprotocol/inspector"]; tested != inspector {
					t.Errorf("%s runs the Inspector %s; e2e/browser tests %s", file, inspector, tested)
				}
			}
		}
	}
	for key := range docsShellBlocks {
		if !seen[key] {
			t.Errorf("docsShellBlocks names %q, which no sh block begins with any more", key)
		}
	}
}

// shownOutput is what a block shows a command printing: the lines after
// its first, "# " comments taken as output.
func shownOutput(block string) string {
	_, rest, _ := strings.Cut(block, "\n")
	var out strings.Builder
	for line := range strings.Lines(rest) {
		out.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "# "), "#"))
	}
	return out.String()
}

// blockOf is the sh block of a page that begins with first.
func blockOf(t *testing.T, page, first string) string {
	t.Helper()
	for _, block := range shBlocks(t)[page] {
		if strings.HasPrefix(block, first+"\n") {
			return block
		}
	}
	t.Fatalf("%s has no sh block beginning %q", page, first)
	return ""
}

// docsCommand runs a todo-gateway command line of the docs in process,
// with the words replace names replaced (a file, an address), and fails unless it exits 0.
func docsCommand(t *testing.T, line string, replace map[string]string) string {
	t.Helper()
	var pairs []string
	for from, to := range replace {
		pairs = append(pairs, from, to)
	}
	// One pass: a replacement is never replaced again.
	command := strings.NewReplacer(pairs...).Replace(strings.TrimPrefix(line, "$ "))
	fields := strings.Fields(command)
	if len(fields) == 0 || fields[0] != "todo-gateway" {
		t.Fatalf("not a todo-gateway command: %s", line)
	}
	args := fields[1:]
	code, stdout, stderr := runCLI(args...)
	if code != exitOK {
		t.Fatalf("%s: exit %d\n%s%s", line, code, stdout, stderr)
	}
	return stdout
}

// The backup shown in docs/production.md, against a gateway on the
// embedded defaults (three empty tenants): the same lines, to the byte.
func TestDocsStoreBackupAsShown(t *testing.T) {
	const first = "todo-gateway store backup --admin 127.0.0.1:3100 --to /backups/todos-$(date +%F).db"
	block := blockOf(t, "../../docs/production.md", first)
	gw, _ := startEmbeddedDefaults(t)
	file := filepath.Join(t.TempDir(), "todos-"+time.Now().Format(time.DateOnly)+".db")
	stdout := docsCommand(t, first, map[string]string{"127.0.0.1:3100": gw.AdminAddr(), "/backups/todos-$(date +%F).db": file})
	shown := shownOutput(block)
	shownFile, _, _ := strings.Cut(shown, ":")
	if got := strings.Replace(stdout, file, shownFile, 1); got != shown {
		t.Errorf("docs/production.md shows\n%s\nthe command printed\n%s", shown, stdout)
	}
}

// The copy shown in docs/etcd.md, from a bbolt file holding what it shows
// (umbrella no longer configured) to an etcd member: the same lines, with
// the file's path and the member's address as shown.
func TestDocsStoreCopyAsShown(t *testing.T) {
	const first = "$ todo-gateway store copy --from tenants.json --to etcd.json"
	block := blockOf(t, "../../docs/etcd.md", first)
	member, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(member.Close)
	path := filepath.Join(t.TempDir(), "todos.db")
	s := openBolt(t, path)
	ctx := context.Background()
	counts := map[string]int{"acme": 1500, "globex": 12, "initech": 3, "umbrella": 4}
	for tenant, n := range counts {
		if err := s.EnsureTenants(ctx, tenant); err != nil {
			t.Fatal(err)
		}
		todos := make([]store.Todo, n)
		for i := range todos {
			todos[i] = storetest.Importable(t, "owner", fmt.Sprint("todo ", i))
		}
		if _, err := s.Import(ctx, tenant, todos); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	stdout := docsCommand(t, first, map[string]string{
		"tenants.json": boltFile(t, path),
		"etcd.json":    etcdFile(t, member.Endpoint, "todo-gateway/"),
	})
	got := strings.NewReplacer(path, "data/todos.db", member.Endpoint, "http://127.0.0.1:2379").Replace(stdout)
	if shown := shownOutput(block); got != shown {
		t.Errorf("docs/etcd.md shows\n%s\nthe command printed\n%s", shown, got)
	}
}

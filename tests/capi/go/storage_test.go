package capigo

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -hello-cid: the CID "Hello World!" uploaded as hello.txt must get (the bindings' upload test).
var helloCID = flag.String("hello-cid", "", "expected CID of \"Hello World!\" uploaded as hello.txt")

// The bindings' default test config (data-dir, log-format nocolors, block-retries 3000,
// nat none), listening on the loopback interface only.
func defaultConfig(t *testing.T) string {
	config := map[string]any{
		"data-dir":      filepath.Join(t.TempDir(), "data"),
		"log-format":    "nocolors",
		"block-retries": 3000,
		"nat":           "none",
		"listen-addrs":  []string{"/ip4/127.0.0.1/tcp/0"},
	}
	text, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	return string(text)
}

func newNode(t *testing.T) *Node {
	t.Helper()
	RuntimeInit()
	RuntimeInit() // idempotent
	node, err := New(defaultConfig(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := node.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return node
}

// shutdown is the bindings' cleanup: Stop, then Destroy (Close, wait, storage_destroy, free).
func shutdown(t *testing.T, node *Node) {
	t.Helper()
	if err := node.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := node.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := node.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
}

// must(call())(t): the value of a (value, error) call, failing the test on an error.
func must[T any](value T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return value
	}
}

func TestInfo(t *testing.T) {
	node := newNode(t)
	defer shutdown(t, node)
	version := must(node.Version())(t)
	if !strings.HasPrefix(version, "v") && version != "untagged build" {
		t.Fatalf("version %q", version)
	}
	if must(node.Revision())(t) == "" {
		t.Fatal("empty revision")
	}
	if repo := must(node.Repo())(t); !strings.HasSuffix(repo, "data") {
		t.Fatalf("repo %q", repo)
	}
	peer := must(node.PeerID())(t)
	spr := must(node.Spr())(t)
	if !strings.HasPrefix(spr, "spr:") || must(node.Spr())(t) != spr {
		t.Fatalf("spr %q changed between calls", spr)
	}
	var debug struct {
		ID    string `json:"id"`
		Spr   string `json:"spr"`
		Table struct {
			LocalNode struct {
				Record string `json:"record"`
				PeerID string `json:"peerId"`
			} `json:"localNode"`
		} `json:"table"`
	}
	if err := json.Unmarshal([]byte(must(node.Debug())(t)), &debug); err != nil {
		t.Fatal(err)
	}
	if debug.ID != peer || debug.Spr != spr || debug.Table.LocalNode.Record != spr || debug.Table.LocalNode.PeerID != peer {
		t.Fatalf("debug %+v does not match peer %s / spr %s", debug, peer, spr)
	}
}

func TestHelloWorldCID(t *testing.T) {
	node := newNode(t)
	defer shutdown(t, node)
	cid := must(node.UploadReader("hello.txt", []byte("Hello World!"), 0))(t)
	if *helloCID != "" && cid != *helloCID {
		t.Fatalf("\"Hello World!\" as hello.txt got CID %s, expected %s", cid, *helloCID)
	}
	data := must(node.DownloadStream(cid, 0, true, ""))(t)
	if string(data) != "Hello World!" {
		t.Fatalf("downloaded %q", data)
	}
	var manifest struct {
		DatasetSize int    `json:"datasetSize"`
		BlockSize   int    `json:"blockSize"`
		Filename    string `json:"filename"`
		Mimetype    string `json:"mimetype"`
	}
	if err := json.Unmarshal([]byte(must(node.DownloadManifest(cid))(t)), &manifest); err != nil {
		t.Fatal(err)
	}
	if manifest.DatasetSize != 12 || manifest.BlockSize != 65536 || manifest.Filename != "hello.txt" ||
		manifest.Mimetype != "text/plain" {
		t.Fatalf("manifest %+v", manifest)
	}
}

func TestMultiBlockRoundTrip(t *testing.T) {
	node := newNode(t)
	defer shutdown(t, node)
	content := make([]byte, 5*65536+1234)
	rand.New(rand.NewSource(12)).Read(content)

	cid := must(node.UploadReader("big.bin", content, 0))(t)
	if got := must(node.DownloadStream(cid, 0, true, ""))(t); !bytes.Equal(got, content) {
		t.Fatalf("stream: %d bytes back, %d sent, equal=false", len(got), len(content))
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	if _, err := node.DownloadStream(cid, 100000, true, out); err != nil {
		t.Fatal(err)
	}
	if onDisk := must(os.ReadFile(out))(t); !bytes.Equal(onDisk, content) {
		t.Fatal("the downloaded file differs")
	}

	// download_init's chunkSize is a read size: 1000-byte chunks
	if err := node.DownloadInit(cid, 1000, true); err != nil {
		t.Fatal(err)
	}
	var chunks []byte
	for {
		chunk := must(node.DownloadChunk(cid))(t)
		if len(chunk) == 0 {
			break
		}
		if len(chunk) > 1000 {
			t.Fatalf("a %d-byte chunk for a chunkSize of 1000", len(chunk))
		}
		chunks = append(chunks, chunk...)
	}
	if err := node.DownloadCancel(cid); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(chunks, content) {
		t.Fatal("chunked download differs")
	}

	// the same bytes by file upload, with progress per stored block
	path := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	fileCID, progress, err := node.UploadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range progress {
		total += n
	}
	if len(progress) != 6 || total != len(content) {
		t.Fatalf("upload_file progress %v (total %d of %d)", progress, total, len(content))
	}
	if got := must(node.DownloadStream(fileCID, 0, true, ""))(t); !bytes.Equal(got, content) {
		t.Fatal("file upload round trip differs")
	}

	// list, space, exists, delete
	if list := must(node.List())(t); !strings.Contains(list, cid) {
		t.Fatalf("list %s lacks %s", list, cid)
	}
	if space := must(node.Space())(t); !strings.Contains(space, "totalBlocks") {
		t.Fatalf("space %s", space)
	}
	if !must(node.Exists(cid))(t) {
		t.Fatal("exists false after upload")
	}
	if err := node.Delete(cid); err != nil {
		t.Fatal(err)
	}
	if must(node.Exists(cid))(t) {
		t.Fatal("exists true after delete")
	}
}

// The bindings free their callback handle right after storage_destroy returns; a callback
// arriving later would crash this process. Destroy without stop/close too, then go on working.
func TestDestroyNeverCallsBack(t *testing.T) {
	for i := 0; i < 3; i++ {
		node := newNode(t)
		if _, err := node.UploadReader(fmt.Sprintf("f%d.txt", i), []byte("some bytes"), 0); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			shutdown(t, node)
		} else if err := node.Destroy(); err != nil { // a running node: destroy closes it
			t.Fatal(err)
		}
	}
	node := newNode(t)
	defer shutdown(t, node)
	if _, err := node.Version(); err != nil {
		t.Fatal(err)
	}
}

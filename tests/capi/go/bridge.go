// Package capigo drives hoard's libstorage.so from Go through cgo, the way the official Logos
// Storage Go bindings use the library: libstorageNimMain once, one C struct per request
// holding a cgo.Handle as userData, wait for the final callback, free the request as soon as
// the call is over (right after storage_destroy returns, which never calls back).
//
// Built and run by tests/capi/test_go_bindings.py against a library built with
// `hoard capi build` (CGO_CFLAGS/CGO_LDFLAGS point at it). Standard library only.
package capigo

/*
#cgo LDFLAGS: -lstorage
#include <stdlib.h>
#include <stdint.h>
#include "libstorage.h"

extern void goCallback(int ret, char *msg, size_t n, void *userData);

static void trampoline(int ret, const char *msg, size_t len, void *userData)
{
    goCallback(ret, (char *)msg, len, userData);
}

static void *request_new(uintptr_t handle)
{
    uintptr_t *r = malloc(sizeof *r);
    *r = handle;
    return r;
}

static void runtime_init(void) { libstorageNimMain(); }
static void *node_new(const char *config, void *r) { return storage_new(config, trampoline, r); }
static int node_start(void *ctx, void *r) { return storage_start(ctx, trampoline, r); }
static int node_stop(void *ctx, void *r) { return storage_stop(ctx, trampoline, r); }
static int node_close(void *ctx, void *r) { return storage_close(ctx, trampoline, r); }
static int node_destroy(void *ctx, void *r) { return storage_destroy(ctx, trampoline, r); }
static int node_version(void *ctx, void *r) { return storage_version(ctx, trampoline, r); }
static int node_revision(void *ctx, void *r) { return storage_revision(ctx, trampoline, r); }
static int node_repo(void *ctx, void *r) { return storage_repo(ctx, trampoline, r); }
static int node_spr(void *ctx, void *r) { return storage_spr(ctx, trampoline, r); }
static int node_debug(void *ctx, void *r) { return storage_debug(ctx, trampoline, r); }
static int node_peer_id(void *ctx, void *r) { return storage_peer_id(ctx, trampoline, r); }
static int node_list(void *ctx, void *r) { return storage_list(ctx, trampoline, r); }
static int node_space(void *ctx, void *r) { return storage_space(ctx, trampoline, r); }
static int upload_init(void *ctx, const char *path, size_t chunk, void *r)
{
    return storage_upload_init(ctx, path, chunk, trampoline, r);
}
static int upload_chunk(void *ctx, const char *session, const uint8_t *data, size_t len, void *r)
{
    return storage_upload_chunk(ctx, session, data, len, trampoline, r);
}
static int upload_finalize(void *ctx, const char *session, void *r)
{
    return storage_upload_finalize(ctx, session, trampoline, r);
}
static int upload_cancel(void *ctx, const char *session, void *r)
{
    return storage_upload_cancel(ctx, session, trampoline, r);
}
static int upload_file(void *ctx, const char *session, void *r)
{
    return storage_upload_file(ctx, session, trampoline, r);
}
static int download_init(void *ctx, const char *cid, size_t chunk, bool local, void *r)
{
    return storage_download_init(ctx, cid, chunk, local, trampoline, r);
}
static int download_chunk(void *ctx, const char *cid, void *r)
{
    return storage_download_chunk(ctx, cid, trampoline, r);
}
static int download_stream(void *ctx, const char *cid, size_t chunk, bool local, const char *path, void *r)
{
    return storage_download_stream(ctx, cid, chunk, local, path, trampoline, r);
}
static int download_cancel(void *ctx, const char *cid, void *r)
{
    return storage_download_cancel(ctx, cid, trampoline, r);
}
static int download_manifest(void *ctx, const char *cid, void *r)
{
    return storage_download_manifest(ctx, cid, trampoline, r);
}
static int node_exists(void *ctx, const char *cid, void *r) { return storage_exists(ctx, cid, trampoline, r); }
static int node_delete(void *ctx, const char *cid, void *r) { return storage_delete(ctx, cid, trampoline, r); }
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

const (
	retOK       = 0
	retErr      = 1
	retProgress = 3
	waitLimit   = 60 * time.Second
)

// RuntimeInit calls libstorageNimMain, as every official binding does before storage_new.
func RuntimeInit() { C.runtime_init() }

// request is one call's state; its C twin (userData) holds the handle.
type request struct {
	mu       sync.Mutex
	done     chan struct{}
	finals   int
	ret      int
	msg      string
	progress []int  // len of each RET_PROGRESS callback
	data     []byte // the bytes of the RET_PROGRESS callbacks that carried some
	handle   cgo.Handle
	cptr     unsafe.Pointer
}

func newRequest() *request {
	r := &request{done: make(chan struct{})}
	r.handle = cgo.NewHandle(r)
	r.cptr = C.request_new(C.uintptr_t(r.handle))
	return r
}

// free forgets the request: a callback arriving later would find no handle.
func (r *request) free() {
	r.handle.Delete()
	C.free(r.cptr)
	r.cptr = nil
}

func (r *request) event(ret int, data []byte, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finals > 0 {
		panic(fmt.Sprintf("callback (%d) after the final callback", ret))
	}
	if ret == retProgress {
		r.progress = append(r.progress, n)
		r.data = append(r.data, data...)
		return
	}
	r.finals++
	r.ret, r.msg = ret, string(data)
	close(r.done)
}

func (r *request) called() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.finals
}

// wait returns the final callback's text once the call returned rc.
func (r *request) wait(rc C.int, what string) (string, error) {
	if rc != retOK {
		if rc == retErr && r.called() == 1 { // a dispatch failure: the callback already ran
			return "", fmt.Errorf("%s: %s", what, r.msg)
		}
		return "", fmt.Errorf("%s returned %d", what, int(rc))
	}
	select {
	case <-r.done:
	case <-time.After(waitLimit):
		return "", fmt.Errorf("%s: no final callback within %s", what, waitLimit)
	}
	if r.ret != retOK {
		return "", fmt.Errorf("%s: %s", what, r.msg)
	}
	return r.msg, nil
}

// Node is one storage context.
type Node struct{ ctx unsafe.Pointer }

// New creates a node (storage_new) and waits for the creation callback.
func New(configJSON string) (*Node, error) {
	r := newRequest()
	defer r.free()
	config := C.CString(configJSON)
	defer C.free(unsafe.Pointer(config))
	ctx := C.node_new(config, r.cptr)
	if ctx == nil {
		return nil, fmt.Errorf("storage_new returned NULL: %s", r.msg)
	}
	if _, err := r.wait(retOK, "storage_new"); err != nil {
		return nil, err
	}
	return &Node{ctx: ctx}, nil
}

// simple runs a (ctx, callback, userData) call and waits for its result.
func (n *Node) simple(call func(unsafe.Pointer, unsafe.Pointer) C.int, what string) (string, error) {
	r := newRequest()
	defer r.free()
	return r.wait(call(n.ctx, r.cptr), what)
}

func (n *Node) Start() error {
	_, err := n.simple(func(c, r unsafe.Pointer) C.int { return C.node_start(c, r) }, "storage_start")
	return err
}

func (n *Node) Stop() error {
	_, err := n.simple(func(c, r unsafe.Pointer) C.int { return C.node_stop(c, r) }, "storage_stop")
	return err
}

func (n *Node) Close() error {
	_, err := n.simple(func(c, r unsafe.Pointer) C.int { return C.node_close(c, r) }, "storage_close")
	return err
}

// Destroy closes and destroys the context like the bindings' Destroy: it does not wait for a
// callback of storage_destroy, and frees the request as soon as the call returns.
func (n *Node) Destroy() error {
	r := newRequest()
	rc := C.node_destroy(n.ctx, r.cptr)
	finals := r.called()
	r.free()
	if rc != retOK {
		return fmt.Errorf("storage_destroy returned %d", int(rc))
	}
	if finals != 0 {
		return errors.New("storage_destroy called back")
	}
	return nil
}

// syncText runs storage_version/storage_revision, which must have called back before returning.
func (n *Node) syncText(call func(unsafe.Pointer, unsafe.Pointer) C.int, what string) (string, error) {
	r := newRequest()
	defer r.free()
	rc := call(n.ctx, r.cptr)
	if rc == retOK && r.called() != 1 {
		return "", fmt.Errorf("%s returned before its callback", what)
	}
	return r.wait(rc, what)
}

func (n *Node) Version() (string, error) {
	return n.syncText(func(c, r unsafe.Pointer) C.int { return C.node_version(c, r) }, "storage_version")
}

func (n *Node) Revision() (string, error) {
	return n.syncText(func(c, r unsafe.Pointer) C.int { return C.node_revision(c, r) }, "storage_revision")
}

func (n *Node) Repo() (string, error) {
	return n.simple(func(c, r unsafe.Pointer) C.int { return C.node_repo(c, r) }, "storage_repo")
}

func (n *Node) Spr() (string, error) {
	return n.simple(func(c, r unsafe.Pointer) C.int { return C.node_spr(c, r) }, "storage_spr")
}

func (n *Node) Debug() (string, error) {
	return n.simple(func(c, r unsafe.Pointer) C.int { return C.node_debug(c, r) }, "storage_debug")
}

func (n *Node) PeerID() (string, error) {
	return n.simple(func(c, r unsafe.Pointer) C.int { return C.node_peer_id(c, r) }, "storage_peer_id")
}

func (n *Node) List() (string, error) {
	return n.simple(func(c, r unsafe.Pointer) C.int { return C.node_list(c, r) }, "storage_list")
}

func (n *Node) Space() (string, error) {
	return n.simple(func(c, r unsafe.Pointer) C.int { return C.node_space(c, r) }, "storage_space")
}

// withText runs a (ctx, text, callback, userData) call.
func (n *Node) withText(text string, call func(unsafe.Pointer, *C.char, unsafe.Pointer) C.int,
	what string) (*request, string, error) {
	r := newRequest()
	defer r.free()
	ctext := C.CString(text)
	defer C.free(unsafe.Pointer(ctext))
	out, err := r.wait(call(n.ctx, ctext, r.cptr), what)
	return r, out, err
}

// UploadInit opens an upload session; chunkSize 0 is the default block size.
func (n *Node) UploadInit(path string, chunkSize int) (string, error) {
	r := newRequest()
	defer r.free()
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return r.wait(C.upload_init(n.ctx, cpath, C.size_t(chunkSize), r.cptr), "storage_upload_init")
}

func (n *Node) UploadChunk(session string, data []byte) error {
	r := newRequest()
	defer r.free()
	csession := C.CString(session)
	defer C.free(unsafe.Pointer(csession))
	var ptr *C.uint8_t
	if len(data) > 0 {
		ptr = (*C.uint8_t)(C.CBytes(data))
		defer C.free(unsafe.Pointer(ptr))
	}
	_, err := r.wait(C.upload_chunk(n.ctx, csession, ptr, C.size_t(len(data)), r.cptr), "storage_upload_chunk")
	return err
}

func (n *Node) UploadFinalize(session string) (string, error) {
	_, cid, err := n.withText(session, func(c unsafe.Pointer, s *C.char, r unsafe.Pointer) C.int {
		return C.upload_finalize(c, s, r)
	}, "storage_upload_finalize")
	return cid, err
}

func (n *Node) UploadCancel(session string) error {
	_, _, err := n.withText(session, func(c unsafe.Pointer, s *C.char, r unsafe.Pointer) C.int {
		return C.upload_cancel(c, s, r)
	}, "storage_upload_cancel")
	return err
}

// UploadReader uploads data in chunks of chunkSize (0: 64 KiB), as the bindings' UploadReader.
func (n *Node) UploadReader(name string, data []byte, chunkSize int) (string, error) {
	session, err := n.UploadInit(name, chunkSize)
	if err != nil {
		return "", err
	}
	defer n.UploadCancel(session) // as the bindings: cancelling a finished session is no error
	if chunkSize == 0 {
		chunkSize = 64 * 1024
	}
	for start := 0; start < len(data); start += chunkSize {
		end := min(start+chunkSize, len(data))
		if err := n.UploadChunk(session, data[start:end]); err != nil {
			return "", err
		}
	}
	return n.UploadFinalize(session)
}

// UploadFile uploads a file by path; returns the CID and the RET_PROGRESS byte counts.
func (n *Node) UploadFile(path string) (string, []int, error) {
	session, err := n.UploadInit(path, 0)
	if err != nil {
		return "", nil, err
	}
	defer n.UploadCancel(session)
	r, cid, err := n.withText(session, func(c unsafe.Pointer, s *C.char, r unsafe.Pointer) C.int {
		return C.upload_file(c, s, r)
	}, "storage_upload_file")
	return cid, r.progress, err
}

func (n *Node) DownloadInit(cid string, chunkSize int, local bool) error {
	r := newRequest()
	defer r.free()
	ccid := C.CString(cid)
	defer C.free(unsafe.Pointer(ccid))
	_, err := r.wait(C.download_init(n.ctx, ccid, C.size_t(chunkSize), C.bool(local), r.cptr), "storage_download_init")
	return err
}

// DownloadChunk returns the next chunk of an open download (nil at the end).
func (n *Node) DownloadChunk(cid string) ([]byte, error) {
	r, _, err := n.withText(cid, func(c unsafe.Pointer, s *C.char, r unsafe.Pointer) C.int {
		return C.download_chunk(c, s, r)
	}, "storage_download_chunk")
	return r.data, err
}

func (n *Node) DownloadCancel(cid string) error {
	_, _, err := n.withText(cid, func(c unsafe.Pointer, s *C.char, r unsafe.Pointer) C.int {
		return C.download_cancel(c, s, r)
	}, "storage_download_cancel")
	return err
}

// DownloadStream streams the content (init, stream, cancel, as the bindings do); the bytes
// come from the RET_PROGRESS callbacks. path "" writes no file.
func (n *Node) DownloadStream(cid string, chunkSize int, local bool, path string) ([]byte, error) {
	if err := n.DownloadInit(cid, chunkSize, local); err != nil {
		return nil, err
	}
	defer n.DownloadCancel(cid)
	r := newRequest()
	defer r.free()
	ccid := C.CString(cid)
	defer C.free(unsafe.Pointer(ccid))
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	rc := C.download_stream(n.ctx, ccid, C.size_t(chunkSize), C.bool(local), cpath, r.cptr)
	_, err := r.wait(rc, "storage_download_stream")
	return r.data, err
}

func (n *Node) DownloadManifest(cid string) (string, error) {
	_, out, err := n.withText(cid, func(c unsafe.Pointer, s *C.char, r unsafe.Pointer) C.int {
		return C.download_manifest(c, s, r)
	}, "storage_download_manifest")
	return out, err
}

func (n *Node) Exists(cid string) (bool, error) {
	_, out, err := n.withText(cid, func(c unsafe.Pointer, s *C.char, r unsafe.Pointer) C.int {
		return C.node_exists(c, s, r)
	}, "storage_exists")
	return out == "true", err
}

func (n *Node) Delete(cid string) error {
	_, _, err := n.withText(cid, func(c unsafe.Pointer, s *C.char, r unsafe.Pointer) C.int {
		return C.node_delete(c, s, r)
	}, "storage_delete")
	return err
}

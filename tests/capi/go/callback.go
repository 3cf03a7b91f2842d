package capigo

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// goCallback is every request's StorageCallback (through the C trampoline in bridge.go).
// userData points to a C struct holding the cgo.Handle of the Go request, as the official
// bindings do: a callback that arrives after the request was freed finds a deleted handle
// (or freed memory), and the Go runtime panics. The tests rely on that to catch late callbacks.
//
//export goCallback
func goCallback(ret C.int, msg *C.char, n C.size_t, userData unsafe.Pointer) {
	if userData == nil {
		return
	}
	h := cgo.Handle(*(*C.uintptr_t)(userData))
	r := h.Value().(*request)
	var data []byte
	if msg != nil {
		data = C.GoBytes(unsafe.Pointer(msg), C.int(n))
	}
	r.event(int(ret), data, int(n))
}

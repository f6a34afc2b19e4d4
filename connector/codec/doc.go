// Package codec runs payload codecs written for The Things Stack's
// JavaScript payload formatter contract, in a sandbox:
//
//	function decodeUplink(input)   // input = {bytes: [...], fPort, recvTime}
//	  → {data: {...}, warnings: [...], errors: [...]}
//	function normalizeUplink(input) // input = {data}, optional
//	  → {data: {...} or [...], warnings, errors}
//	function encodeDownlink(input) // input = {data: {...}, fPort}
//	  → {bytes: [...], fPort, warnings, errors}
//	function decodeDownlink(input) // input = {bytes: [...], fPort}
//	  → {data: {...}, warnings, errors}
//
// as in pkg/messageprocessors/javascript of The Things Stack, including its
// fallbacks to the older Decoder(bytes, fPort) and Encoder(data, fPort).
// A non-empty errors array is a failed decode, as there.
//
// The engine is github.com/dop251/goja, the one The Things Stack uses. Each
// codec is compiled once (Compile) and runs in a pool of runtimes of its
// own, so codecs never see each other's globals; a runtime is dropped after
// any failure. A call is bounded (Limits): in time (100 ms by default, the
// stack's default, by interrupting the runtime; the top-level code of a new
// runtime gets a larger budget, 1 s), in call depth, in input
// size, in the size and depth of its result, and in the process heap's
// growth during the call (a watchdog samples the heap and interrupts the
// call). The sandbox offers no I/O: no require, no timers, no network or
// files; console.log and its kin write to a captured, bounded log returned
// with the result. docs/connectors.md says what is and is not bounded.
//
// Every failure — a thrown value, errors[], a result of the wrong shape, a
// timeout, a runaway allocation — is returned as an *Error with the codec's
// ID and a Reason; none crashes the process, and the caller keeps the
// uplink's raw bytes.
package codec

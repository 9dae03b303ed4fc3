import CDNNL
import Foundation

/// oneDNN, the primitives library the bf16 kernels run on (PyTorch's CPU backend uses the same one).
///
/// One CPU engine per process. Primitives are built once per shape by the layer that runs them and kept
/// there; memory objects wrap our own buffers, so nothing is copied in or out that a reorder does not
/// need. oneDNN runs its own OpenMP threads inside each primitive. Calls may come from several threads at
/// once (two models in one process, parallel tests): each call takes a stream of its own from a pool and
/// its own scratchpad (primitives are built with user-managed scratchpads, because the library's default
/// one is a single buffer shared by every primitive).
enum OneDNN {
    nonisolated(unsafe) static let engine: dnnl_engine_t = {
        var engine: dnnl_engine_t?
        check(dnnl_engine_create(&engine, dnnl_cpu, 0), "creating the CPU engine")
        return engine!
    }()

    private static let streamLock = NSLock()
    nonisolated(unsafe) private static var idleStreams: [dnnl_stream_t] = []

    /// Runs `body` with a stream no other thread uses meanwhile (streams are kept for reuse).
    static func withStream<R>(_ body: (dnnl_stream_t) -> R) -> R {
        let stream = streamLock.withLock { idleStreams.popLast() } ?? {
            var stream: dnnl_stream_t?
            check(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags.rawValue), "creating a stream")
            return stream!
        }()
        defer { streamLock.withLock { idleStreams.append(stream) } }
        return body(stream)
    }

    // Execution argument slots (dnnl_types.h: DNNL_ARG_*).
    static let src: Int32 = 1, dst: Int32 = 17, weights: Int32 = 33, bias: Int32 = 41
    static let diffSrc: Int32 = 129, diffDst: Int32 = 145, scratchpad: Int32 = 80

    /// Shapes and strides are always valid here (they come from tensors we built), so a failure is a
    /// programming error or an unsupported CPU: stop with the call that failed.
    static func check(_ status: dnnl_status_t, _ what: @autoclosure () -> String) {
        precondition(status == dnnl_success, "oneDNN: \(what()) failed (status \(status.rawValue))")
    }

    /// Descriptor of a tensor with dimensions `dims` in a named layout (`dnnl_format_tag_any` lets the
    /// primitive choose).
    static func descriptor(_ dims: [Int], _ type: dnnl_data_type_t, _ tag: dnnl_format_tag_t) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init)
        check(dnnl_memory_desc_init_by_tag(&md, Int32(d.count), d, type, tag), "describing \(dims)")
        return md
    }

    /// Descriptor of a strided view (element strides per dimension).
    static func descriptor(_ dims: [Int], _ type: dnnl_data_type_t, strides: [Int]) -> dnnl_memory_desc_t {
        var md = dnnl_memory_desc_t()
        let d = dims.map(Int64.init), s = strides.map(Int64.init)
        check(dnnl_memory_desc_init_by_strides(&md, Int32(d.count), d, type, s), "describing \(dims) strides \(strides)")
        return md
    }

    static func bytes(_ md: dnnl_memory_desc_t) -> Int {
        var md = md
        return dnnl_memory_desc_get_size(&md)
    }

    static func equal(_ a: dnnl_memory_desc_t, _ b: dnnl_memory_desc_t) -> Bool {
        var a = a, b = b
        return dnnl_memory_desc_equal(&a, &b) != 0
    }

    /// Attributes every primitive is built with: a scratchpad the caller passes (the caller destroys them).
    static func attributes() -> dnnl_primitive_attr_t {
        var attr: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&attr), "creating attributes")
        check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "asking for a user scratchpad")
        return attr!
    }

    /// Attributes that make a primitive add into its destination (dst = result + dst).
    static func accumulating() -> dnnl_primitive_attr_t {
        let attr = attributes()
        var ops: dnnl_post_ops_t?
        check(dnnl_post_ops_create(&ops), "creating post-ops")
        check(dnnl_post_ops_append_sum(ops, 1), "appending a sum")
        check(dnnl_primitive_attr_set_post_ops(attr, ops), "setting post-ops")
        dnnl_post_ops_destroy(ops)
        return attr
    }
}

/// A primitive with its descriptor (which knows the memory layouts it chose), destroyed together.
final class OneDNNPrimitive: @unchecked Sendable {
    let descriptor: dnnl_primitive_desc_t
    let primitive: dnnl_primitive_t
    /// The work space the primitive needs per call (zero bytes for many).
    let scratchpadLayout: dnnl_memory_desc_t
    let scratchpadBytes: Int

    /// Builds the primitive from a descriptor that `create` makes; nil when oneDNN has no implementation.
    init?(_ create: (inout dnnl_primitive_desc_t?) -> dnnl_status_t) {
        var pd: dnnl_primitive_desc_t?
        guard create(&pd) == dnnl_success, let pd else { return nil }
        var p: dnnl_primitive_t?
        guard dnnl_primitive_create(&p, pd) == dnnl_success, let p else {
            dnnl_primitive_desc_destroy(pd)
            return nil
        }
        descriptor = pd
        primitive = p
        scratchpadLayout = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0)?.pointee ?? dnnl_memory_desc_t()
        scratchpadBytes = OneDNN.bytes(scratchpadLayout)
    }

    /// A reorder (layout and/or type conversion) from `from` to `to`, optionally adding into the destination.
    convenience init(reorder from: dnnl_memory_desc_t, to: dnnl_memory_desc_t, accumulate: Bool = false) {
        var from = from, to = to
        let attr = accumulate ? OneDNN.accumulating() : OneDNN.attributes()
        defer { dnnl_primitive_attr_destroy(attr) }
        self.init { pd in
            dnnl_reorder_primitive_desc_create(&pd, &from, OneDNN.engine, &to, OneDNN.engine, attr)
        }!
    }

    deinit {
        dnnl_primitive_destroy(primitive)
        dnnl_primitive_desc_destroy(descriptor)
    }

    /// The layout the primitive chose for an argument (`dnnl_query_src_md`, `…weights_md`, …).
    func layout(_ query: dnnl_query_t) -> dnnl_memory_desc_t {
        dnnl_primitive_desc_query_md(descriptor, query, 0).pointee
    }

    /// The implementation oneDNN picked (e.g. "brg:avx512_core_bf16"), for tests and profiles.
    var implementation: String {
        var name: UnsafePointer<CChar>?
        withUnsafeMutablePointer(to: &name) { p in
            _ = dnnl_primitive_desc_query(descriptor, dnnl_query_impl_info_str, 0, UnsafeMutableRawPointer(p))
        }
        return name.map { String(cString: $0) } ?? "?"
    }

    /// Runs the primitive on buffers described by `args` (slot, descriptor, pointer) and waits for it.
    func run(_ args: [(slot: Int32, layout: dnnl_memory_desc_t, pointer: UnsafeMutableRawPointer)]) {
        guard scratchpadBytes > 0 else { return run(args, scratchpad: nil) }
        Scratch.withBytes(scratchpadBytes) { run(args, scratchpad: $0) }
    }

    private func run(_ args: [(slot: Int32, layout: dnnl_memory_desc_t, pointer: UnsafeMutableRawPointer)],
                     scratchpad: UnsafeMutableRawPointer?) {
        let args = scratchpad.map { args + [(OneDNN.scratchpad, scratchpadLayout, $0)] } ?? args
        var memories: [dnnl_memory_t] = []
        memories.reserveCapacity(args.count)
        defer { for m in memories { dnnl_memory_destroy(m) } }
        var execArgs: [dnnl_exec_arg_t] = []
        for a in args {
            var md = a.layout, memory: dnnl_memory_t?
            OneDNN.check(dnnl_memory_create(&memory, &md, OneDNN.engine, a.pointer), "wrapping a buffer")
            memories.append(memory!)
            execArgs.append(dnnl_exec_arg_t(arg: a.slot, memory: memory))
        }
        OneDNN.withStream { stream in
            OneDNN.check(dnnl_primitive_execute(primitive, stream, Int32(execArgs.count), execArgs), "executing")
            OneDNN.check(dnnl_stream_wait(stream), "waiting for the stream")
        }
    }
}

/// A 64-byte aligned buffer of bf16 values (raw UInt16 bit patterns) or any layout oneDNN describes.
final class AlignedBuffer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    let bytes: Int

    init(bytes: Int) {
        self.bytes = bytes
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64)
    }

    deinit { pointer.deallocate() }
}

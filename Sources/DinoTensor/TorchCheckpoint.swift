import Foundation
import Synchronization

/// A PyTorch checkpoint written by `torch.save` (the zip format of torch >= 1.6), read without
/// Python and without executing its pickle.
///
/// Layout: a zip archive whose members share one top folder `<archive>/`: `data.pkl` (the
/// pickled object tree), `data/<key>` (the raw bytes of each storage), `byteorder` (`little`),
/// `version`, and in recent versions `.format_version`, `.storage_alignment` and
/// `.data/serialization_id`. Members are stored (deflated ones are decompressed). The pickle is
/// run by a restricted machine that knows only what `torch.save` of dicts of tensors emits
/// (see `PickleMachine`); each tensor is a strided view (`size`, `stride`, `storage_offset`) of
/// a storage, several tensors may share one.
///
/// Tensors are named by their dict keys joined with `.`; list and tuple items by their index.
/// The file is memory-mapped and a tensor is only read (and converted to float32) when asked
/// for; reads from several tasks at once are safe. Values other than tensors are kept in
/// `metadata`.
public final class TorchCheckpoint: TensorSource {
    /// Which part of the pickled object tree the tensors are taken from.
    public enum Root: Sendable, Equatable {
        /// Every tensor of the file, named by its full key path.
        case whole
        /// The dict under the key `state_dict` or `model` when it holds every tensor of the file
        /// (as training loops and mmcv save them, with `meta`, `optimizer` state or epochs beside
        /// it); otherwise the whole file.
        case automatic
        /// The dict at this key path (`["state_dict"]`); names are relative to it.
        case keyPath([String])
    }

    /// One tensor as the pickle describes it.
    public struct Entry: Sendable, Equatable {
        /// The name, relative to the root.
        public var name: String
        /// The torch dtype without the `torch.` prefix (`float32`, `bfloat16`, `int64`).
        public var dtype: String
        /// The shape, outermost first.
        public var shape: [Int]
        /// Elements to skip per step along each dimension of the storage.
        public var strides: [Int]
        /// The first element's index in the storage.
        public var storageOffset: Int
        /// The storage's key: its bytes are the archive member `data/<key>`.
        public var storageKey: String
    }

    /// Largest `data.pkl` read; released checkpoints have pickles of a few hundred kilobytes.
    public static let maxPickleBytes = 1 << 30
    /// Most values visited when flattening the object tree, which bounds what a pickle that
    /// reuses one dict many times (each use counts again) can make the reader build.
    public static let maxVisitedValues = 1 << 22
    /// Most elements of a tensor with more elements than its storage holds (a stride-0 view, as
    /// `expand` makes), so that a tiny file cannot demand a huge allocation.
    public static let maxExpandedElements = 1 << 28

    /// The file's path.
    public let path: String
    /// Every tensor of the root, in the order the pickle lists them.
    public let entries: [Entry]
    /// The values that are not tensors, by their full key path from the top of the file
    /// (e.g. `meta` for the whole `meta` dict of an mmcv checkpoint); containers that hold a
    /// tensor are split into their members.
    public let metadata: [String: TorchValue]
    /// The key path of the root the names are relative to (`[]` for the whole file).
    public let rootPath: [String]

    private let file: MappedFile
    private let archive: ZipArchive
    private let views: [View]
    private let index: [String: Int]
    private let verifyChecksums: Bool
    /// Storage members whose CRC-32 has been checked.
    private let verified = Mutex<Set<String>>([])

    private struct View: Sendable {
        var member: ZipMember
        var tensor: PickleTensor
    }

    /// The pickle that `torch.save(..., _use_new_zipfile_serialization=False)` and torch < 1.6
    /// start with: protocol 2 and the magic number 0x1950a86a20f9469cfc6c as a LONG1.
    private static let legacyMagic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    private static let resaveAdvice = "re-save it with torch >= 1.6: torch.save(torch.load(old, weights_only=True), new)"

    /// Maps the checkpoint at `url`, runs its pickle and checks every tensor against its storage.
    ///
    /// - Parameters:
    ///   - root: the part of the object tree whose tensors are exposed.
    ///   - verifyChecksums: check each storage's CRC-32 the first time one of its tensors is
    ///     read (`data.pkl` and deflated members are always checked).
    public convenience init(url: URL, root: Root = .automatic, verifyChecksums: Bool = true) throws(TensorFileError) {
        try self.init(mapped: MappedFile(url: url), root: root, verifyChecksums: verifyChecksums)
    }

    /// Reads a checkpoint held in memory; `name` stands for the file in messages.
    public convenience init(data: Data, name: String, root: Root = .automatic, verifyChecksums: Bool = true) throws(TensorFileError) {
        try self.init(mapped: MappedFile(copying: data, path: name), root: root, verifyChecksums: verifyChecksums)
    }

    /// Reads the bytes of a mapped (or copied) checkpoint file.
    public init(mapped file: MappedFile, root: Root = .automatic, verifyChecksums: Bool = true) throws(TensorFileError) {
        let path = file.path
        let bytes = file.bytes
        if bytes.starts(with: Self.legacyMagic) {
            throw .invalidHeader(path: path, reason: "legacy torch.save format (torch < 1.6 or _use_new_zipfile_serialization=False) is not read; \(Self.resaveAdvice)")
        }
        if bytes.first == 0x80 {
            throw .invalidHeader(path: path, reason: "a bare pickle, not a torch.save zip archive; \(Self.resaveAdvice)")
        }
        if bytes.count >= 262, bytes[257..<262].elementsEqual("ustar".utf8) {
            throw .invalidHeader(path: path, reason: "legacy tar-format torch.save file (torch < 0.4) is not read; \(Self.resaveAdvice)")
        }
        let archive = try ZipArchive(bytes: bytes, path: path)

        // torch's own reader takes the folder of the first member; requiring exactly one
        // `<folder>/data.pkl` is the same for every file torch writes and unambiguous otherwise.
        let pickles = archive.members.filter { member in
            let parts = member.name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && !parts[0].isEmpty && parts[1] == "data.pkl"
        }
        guard pickles.count == 1, let pickle = pickles.first else {
            throw .invalidHeader(
                path: path,
                reason: pickles.isEmpty ? "no '<archive>/data.pkl' member: not a torch.save checkpoint" : "several '<archive>/data.pkl' members")
        }
        let prefix = String(pickle.name.dropLast("/data.pkl".count))

        if let order = archive.member(named: prefix + "/byteorder") {
            let text = try Self.smallText(archive.contents(of: order, in: bytes, verify: true))
            guard text == "little" else {
                throw .invalidHeader(
                    path: path,
                    reason: "'\(order.name)' says '\(text.prefix(16))'; only little-endian checkpoints are read (re-save on a little-endian machine)")
            }
        }
        guard pickle.uncompressedSize <= Self.maxPickleBytes else {
            throw .invalidHeader(path: path, reason: "data.pkl of \(pickle.uncompressedSize) bytes exceeds the limit of \(Self.maxPickleBytes)")
        }
        let tree: PickleValue
        switch try archive.contents(of: pickle, in: bytes, verify: true) {
        case .mapped(let raw): tree = try PickleMachine.run(raw, path: path)
        case .owned(let copy):
            let result = copy.withUnsafeBytes { raw in Result { () throws(TensorFileError) in try PickleMachine.run(raw, path: path) } }
            tree = try result.get()
        }

        var flattener = Flattener(path: path)
        try flattener.walk(tree, at: [])
        let rootPath = try Self.resolveRoot(root, in: tree, path: path)

        var entries: [Entry] = []
        var views: [View] = []
        var index: [String: Int] = [:]
        for (components, tensor) in flattener.tensors {
            let fullName = components.joined(separator: ".")
            let member = try Self.checkStorage(of: tensor, named: fullName, prefix: prefix, archive: archive, path: path)
            guard components.count > rootPath.count, components.starts(with: rootPath) else { continue }
            let name = components[rootPath.count...].joined(separator: ".")
            guard index[name] == nil else { throw .duplicateTensor(path: path, tensor: name) }
            index[name] = entries.count
            entries.append(Entry(
                name: name, dtype: tensor.dtype.name, shape: tensor.shape, strides: tensor.strides,
                storageOffset: tensor.offset, storageKey: tensor.storage.key))
            views.append(View(member: member, tensor: tensor))
        }

        self.path = path
        self.entries = entries
        self.metadata = flattener.metadata
        self.rootPath = rootPath
        self.archive = archive
        self.views = views
        self.index = index
        self.verifyChecksums = verifyChecksums
        self.file = file
    }

    /// Tensor names of the root, in the order the pickle lists them.
    public var tensorNames: [String] { entries.map(\.name) }

    /// The description of tensor `name`.
    public func entry(_ name: String) throws(TensorFileError) -> Entry {
        guard let i = index[name] else { throw .missingTensor(path: path, tensor: name) }
        return entries[i]
    }

    /// The shape of tensor `name`, without reading its data.
    public func shape(of name: String) throws(TensorFileError) -> [Int] { try entry(name).shape }

    /// The file's path (all tensors live in the one archive).
    public func location(of name: String) -> String { path }

    /// The tensor converted to float32, gathered from its storage as its strides say (integer
    /// and boolean types are converted by value).
    public func tensor(_ name: String) throws(TensorFileError) -> Tensor {
        guard let i = index[name] else { throw .missingTensor(path: path, tensor: name) }
        let view = views[i]
        let verify = verifyChecksums && !verified.withLock { $0.contains(view.member.name) }
        let contents = try archive.contents(of: view.member, in: file.bytes, verify: verify)
        if verify { verified.withLock { _ = $0.insert(view.member.name) } }
        let scalars: [Float]
        switch contents {
        case .mapped(let raw):
            scalars = withExtendedLifetime(file) { Self.gather(raw, view.tensor) }
            // As the safetensors reader does: once copied out, the storage's pages may leave
            // memory (they come back from the file if another view of the storage is read).
            file.release(view.member.dataOffset..<(view.member.dataOffset + view.member.compressedSize))
        case .owned(let copy): scalars = copy.withUnsafeBytes { Self.gather($0, view.tensor) }
        }
        return Tensor(shape: view.tensor.shape, scalars: scalars)
    }

    // MARK: - Opening

    private static func smallText(_ contents: ZipMemberBytes) -> String {
        switch contents {
        case .mapped(let raw): String(decoding: raw.prefix(64), as: UTF8.self)
        case .owned(let copy): String(decoding: copy.prefix(64), as: UTF8.self)
        }
    }

    private static func resolveRoot(_ root: Root, in tree: PickleValue, path: String) throws(TensorFileError) -> [String] {
        switch root {
        case .whole:
            return []
        case .automatic:
            // Unwrap only when the choice is unambiguous: one top-level entry holds tensors,
            // it is a dict, and it has one of the conventional names.
            guard case .dict(let top) = tree else { return [] }
            let holders = zip(top.keys, top.values).filter { $0.1.holdsTensor }
            guard holders.count == 1, let (key, value) = holders.first, ["state_dict", "model"].contains(key.text),
                case .dict = value
            else { return [] }
            return [key.text]
        case .keyPath(let keys):
            var node = tree
            for (depth, key) in keys.enumerated() {
                guard case .dict(let dict) = node, let child = dict.value(forText: key) else {
                    let here = keys[..<depth].joined(separator: ".")
                    throw .invalidHeader(path: path, reason: "no dict entry '\(key)' at '\(here.isEmpty ? "(top level)" : here)'")
                }
                node = child
            }
            guard case .dict = node else {
                throw .invalidHeader(path: path, reason: "'\(keys.joined(separator: "."))' is a \(node.kind), not a dict of tensors")
            }
            return keys
        }
    }

    /// Finds a tensor's storage member and checks that the member holds exactly the storage and
    /// that the view stays inside it.
    private static func checkStorage(
        of tensor: PickleTensor, named name: String, prefix: String, archive: ZipArchive, path: String
    ) throws(TensorFileError) -> ZipMember {
        guard let elementSize = tensor.dtype.byteSize else {
            throw .unsupportedDType(path: path, tensor: name, dtype: "torch.\(tensor.dtype.name)")
        }
        let storage = tensor.storage
        let memberName = prefix + "/data/" + storage.key
        guard let member = archive.member(named: memberName) else {
            throw .invalidOffsets(path: path, tensor: name, reason: "its storage '\(memberName)' is not in the archive")
        }
        var storageBytes = storage.count
        var storageType = "untyped"
        if let dtype = storage.dtype, let size = dtype.byteSize {
            let (bytes, overflow) = storage.count.multipliedReportingOverflow(by: size)
            storageBytes = overflow ? -1 : bytes
            storageType = dtype.name
        }
        guard member.uncompressedSize == storageBytes else {
            throw .byteCountMismatch(path: path, tensor: name, shape: [storage.count], dtype: storageType, bytes: member.uncompressedSize)
        }
        let capacity = storageBytes / elementSize

        let describe = "size \(tensor.shape), stride \(tensor.strides), offset \(tensor.offset)"
        var count = 1
        var last = tensor.offset
        for (size, stride) in zip(tensor.shape, tensor.strides) {
            let (product, countOverflow) = count.multipliedReportingOverflow(by: size)
            guard !countOverflow else { throw .invalidOffsets(path: path, tensor: name, reason: "\(describe) overflows") }
            count = product
            guard size > 0 else { continue }
            let (reach, reachOverflow) = (size - 1).multipliedReportingOverflow(by: stride)
            let (sum, sumOverflow) = last.addingReportingOverflow(reach)
            guard !reachOverflow, !sumOverflow else { throw .invalidOffsets(path: path, tensor: name, reason: "\(describe) overflows") }
            last = sum
        }
        let inside = count == 0 ? tensor.offset <= capacity : last < capacity
        guard inside else {
            throw .invalidOffsets(
                path: path, tensor: name,
                reason: "the view (\(describe)) reaches element \(last) of storage '\(storage.key)', which holds \(capacity) elements")
        }
        guard count <= max(capacity, maxExpandedElements) else {
            throw .invalidOffsets(
                path: path, tensor: name,
                reason: "the view (\(describe)) has \(count) elements from a storage of \(capacity), more than the \(maxExpandedElements) allowed")
        }
        return member
    }

    // MARK: - Reading values

    /// The view's values in row-major order. The view was checked to lie inside `storage`.
    private static func gather(_ storage: UnsafeRawBufferPointer, _ view: PickleTensor) -> [Float] {
        let count = view.shape.reduce(1, *)
        guard count > 0, let elementSize = view.dtype.byteSize else { return [] }
        var last = view.offset
        for (size, stride) in zip(view.shape, view.strides) { last += (size - 1) * stride }
        let span = UnsafeRawBufferPointer(rebasing: storage[(view.offset * elementSize)..<((last + 1) * elementSize)])
        var values = decode(span, view.dtype, count: last - view.offset + 1)

        var expected = 1
        var contiguous = true
        for (size, stride) in zip(view.shape, view.strides).reversed() {
            // A dimension of size 1 is never stepped along, so its stride does not matter.
            if size != 1 && stride != expected { contiguous = false }
            expected *= size
        }
        if !contiguous { values = strided(values, shape: view.shape, strides: view.strides, count: count) }
        if view.negated {
            for i in values.indices { values[i] = -values[i] }
        }
        return values
    }

    /// Walks the index space row-major, the last dimension innermost, moving through `span`
    /// (which starts at the view's first element) by the strides.
    private static func strided(_ span: [Float], shape: [Int], strides: [Int], count: Int) -> [Float] {
        let rank = shape.count
        let innerSize = shape[rank - 1]
        let innerStride = strides[rank - 1]
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            var counter = [Int](repeating: 0, count: rank - 1)
            var base = 0
            var o = 0
            outer: while true {
                for j in 0..<innerSize {
                    out[o] = span[base + j * innerStride]
                    o += 1
                }
                var k = rank - 2
                while k >= 0 {
                    counter[k] += 1
                    base += strides[k]
                    if counter[k] < shape[k] { continue outer }
                    base -= strides[k] * shape[k]
                    counter[k] = 0
                    k -= 1
                }
                break
            }
            initialized = count
        }
    }

    private static func decode(_ raw: UnsafeRawBufferPointer, _ dtype: TorchDType, count: Int) -> [Float] {
        switch dtype {
        case .float32: return TensorBytes.decode(raw, dtype: .F32, count: count)
        case .float16: return TensorBytes.decode(raw, dtype: .F16, count: count)
        case .bfloat16: return TensorBytes.decode(raw, dtype: .BF16, count: count)
        case .float64: return TensorBytes.decode(raw, dtype: .F64, count: count)
        case .int64: return TensorBytes.decode(raw, dtype: .I64, count: count)
        case .int32: return TensorBytes.decode(raw, dtype: .I32, count: count)
        case .int16: return TensorBytes.decode(raw, dtype: .I16, count: count)
        case .int8: return TensorBytes.decode(raw, dtype: .I8, count: count)
        case .uint8: return TensorBytes.decode(raw, dtype: .U8, count: count)
        case .bool: return TensorBytes.decode(raw, dtype: .BOOL, count: count)
        case .uint16: return (0..<count).map { Float(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
        case .uint32: return (0..<count).map { Float(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        case .uint64: return (0..<count).map { Float(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
        case .unsupported: return []
        }
    }
}

/// Splits the object tree into named tensors and metadata values.
private struct Flattener {
    let path: String
    var tensors: [(components: [String], tensor: PickleTensor)] = []
    var metadata: [String: TorchValue] = [:]
    private var visited = 0

    init(path: String) { self.path = path }

    private mutating func visit() throws(TensorFileError) {
        visited += 1
        guard visited <= TorchCheckpoint.maxVisitedValues else {
            throw .invalidHeader(
                path: path,
                reason: "data.pkl expands to more than \(TorchCheckpoint.maxVisitedValues) values (a shared container reused many times)")
        }
    }

    /// Containers that hold a tensor (and the top-level value) are split into their members;
    /// anything else is one metadata value.
    mutating func walk(_ value: PickleValue, at components: [String]) throws(TensorFileError) {
        try visit()
        switch value {
        case .tensor(let tensor):
            guard !components.isEmpty else {
                throw .invalidHeader(path: path, reason: "data.pkl holds a single tensor, not a dict of tensors")
            }
            tensors.append((components, tensor))
        case .dict(let dict) where dict.holdsTensor || components.isEmpty:
            for (key, item) in zip(dict.keys, dict.values) { try walk(item, at: components + [key.text]) }
        case .list(let list) where list.holdsTensor:
            for (i, item) in list.items.enumerated() { try walk(item, at: components + [String(i)]) }
        case .tuple(let tuple) where tuple.holdsTensor:
            for (i, item) in tuple.items.enumerated() { try walk(item, at: components + [String(i)]) }
        default:
            metadata[components.joined(separator: ".")] = try convert(value)
        }
    }

    private mutating func convert(_ value: PickleValue) throws(TensorFileError) -> TorchValue {
        try visit()
        switch value {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .float(let d): return .double(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .bytes(b)
        case .tuple(let tuple):
            var items: [TorchValue] = []
            for item in tuple.items { items.append(try convert(item)) }
            return .list(items)
        case .list(let list):
            var items: [TorchValue] = []
            for item in list.items { items.append(try convert(item)) }
            return .list(items)
        case .dict(let dict):
            var members: [TorchValue.Member] = []
            for (key, item) in zip(dict.keys, dict.values) { members.append(.init(key: key.text, value: try convert(item))) }
            return .dict(members)
        case .dtype(let dtype): return .string("torch.\(dtype.name)")
        case .callable(let callable): return .string(callable.qualifiedName)
        case .storage(let storage):
            throw .invalidHeader(path: path, reason: "a bare storage ('\(storage.key)') outside any tensor is not read")
        case .tensor:
            preconditionFailure("a tensor inside a value whose containers record none")
        }
    }
}

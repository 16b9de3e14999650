/// A restricted unpickler for the `data.pkl` of a `torch.save` archive.
///
/// It interprets the opcodes Python's pickler emits for (nested) dicts, lists and tuples of
/// tensors and plain values, and nothing else. Nothing is ever executed: `GLOBAL` resolves
/// only names from a fixed table of torch rebuild functions, storage types and dtypes, and
/// `REDUCE` applies them symbolically (a `_rebuild_tensor_v2` call becomes a tensor
/// description). Any other opcode or global is refused with an error naming it.
///
/// Limits keep a hostile pickle from exhausting memory or stack: the stack, mark stack and memo
/// have maximum sizes, containers a maximum nesting depth, and containers cannot change after
/// they were placed in another one, so no cycle can be built and every recorded depth stays
/// exact.
struct PickleMachine {
    /// Deepest nesting of containers accepted (a state dict needs 2 or 3).
    static let maxNesting = 100
    /// Most values on the stack at once.
    static let maxStack = 1 << 20
    /// Most open marks (one per container being built).
    static let maxMarks = 1 << 12
    /// Most memo entries.
    static let maxMemo = 1 << 20
    /// Most dimensions of a tensor.
    static let maxRank = 64

    private let input: UnsafeRawBufferPointer
    private let path: String
    private var position = 0
    /// Where the opcode being run starts, for error messages.
    private var opcodeStart = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    private var storages: [String: PickleStorage] = [:]

    /// Runs the pickle `input` of the checkpoint at `path` and returns the object it builds.
    static func run(_ input: UnsafeRawBufferPointer, path: String) throws(TensorFileError) -> PickleValue {
        var machine = PickleMachine(input: input, path: path)
        return try machine.execute()
    }

    private init(input: UnsafeRawBufferPointer, path: String) {
        self.input = input
        self.path = path
    }

    // MARK: - Errors

    private func malformed(_ reason: String) -> TensorFileError {
        .invalidHeader(path: path, reason: "data.pkl byte \(opcodeStart): \(reason)")
    }

    private func rejected(_ reason: String) -> TensorFileError {
        .rejectedPickle(path: path, offset: opcodeStart, reason: reason)
    }

    // MARK: - Reading operands

    private mutating func byte() throws(TensorFileError) -> UInt8 {
        guard position < input.count else {
            throw .truncated(path: path, reason: "data.pkl ends at byte \(input.count) before its STOP opcode")
        }
        defer { position += 1 }
        return input[position]
    }

    /// The next `count` bytes; `count` is checked against what is left before anything is read.
    private mutating func take(_ count: UInt64) throws(TensorFileError) -> UnsafeRawBufferPointer {
        guard count <= UInt64(input.count - position) else {
            throw malformed("an operand of \(count) bytes runs past the end of data.pkl")
        }
        defer { position += Int(count) }
        return UnsafeRawBufferPointer(rebasing: input[position..<(position + Int(count))])
    }

    private mutating func littleEndian(_ width: Int) throws(TensorFileError) -> UInt64 {
        let bytes = try take(UInt64(width))
        var value: UInt64 = 0
        for i in (0..<width).reversed() { value = value << 8 | UInt64(bytes[i]) }
        return value
    }

    private mutating func text(_ count: UInt64) throws(TensorFileError) -> String {
        let bytes = try take(count)
        guard let string = String(validating: bytes, as: UTF8.self) else { throw malformed("a string that is not UTF-8") }
        return string
    }

    /// A newline-terminated name of `GLOBAL`: printable ASCII, at most 256 bytes.
    private mutating func line() throws(TensorFileError) -> String {
        var bytes: [UInt8] = []
        while true {
            let b = try byte()
            if b == UInt8(ascii: "\n") { break }
            guard b > 0x20, b < 0x7F, bytes.count < 256 else { throw malformed("a GLOBAL name that is not a short printable name") }
            bytes.append(b)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - Stack

    /// The bottom of the part of the stack the current opcode may use: values below the
    /// innermost mark belong to an enclosing container.
    private var fence: Int { marks.last ?? 0 }

    private mutating func push(_ value: PickleValue) throws(TensorFileError) {
        guard stack.count < Self.maxStack else { throw malformed("more than \(Self.maxStack) values on the stack") }
        stack.append(value)
    }

    private mutating func pop() throws(TensorFileError) -> PickleValue {
        guard stack.count > fence, let value = stack.popLast() else { throw malformed("stack underflow") }
        return value
    }

    private mutating func pop(_ count: Int) throws(TensorFileError) -> [PickleValue] {
        guard stack.count - fence >= count else { throw malformed("stack underflow") }
        defer { stack.removeLast(count) }
        return Array(stack.suffix(count))
    }

    private func peek() throws(TensorFileError) -> PickleValue {
        guard stack.count > fence, let value = stack.last else { throw malformed("stack underflow") }
        return value
    }

    private mutating func popToMark() throws(TensorFileError) -> [PickleValue] {
        guard let mark = marks.popLast() else { throw malformed("no MARK to pop to") }
        defer { stack.removeLast(stack.count - mark) }
        return Array(stack[mark...])
    }

    // MARK: - The opcodes

    private mutating func execute() throws(TensorFileError) -> PickleValue {
        while true {
            opcodeStart = position
            let opcode = try byte()
            switch opcode {
            case 0x80:  // PROTO
                let version = try byte()
                guard version <= 5 else { throw malformed("pickle protocol \(version)") }
            case 0x95:  // FRAME: framing only groups bytes for buffered reading.
                let length = try littleEndian(8)
                guard length <= UInt64(input.count - position) else { throw malformed("a frame runs past the end of data.pkl") }
            case UInt8(ascii: "."):  // STOP
                guard marks.isEmpty, stack.count == 1, let result = stack.first else {
                    throw malformed("STOP with \(stack.count) values on the stack and \(marks.count) open marks")
                }
                guard position == input.count else { throw malformed("\(input.count - position) bytes after STOP") }
                return result
            case UInt8(ascii: "}"): try push(.dict(PickleDict()))  // EMPTY_DICT
            case UInt8(ascii: "]"): try push(.list(PickleList()))  // EMPTY_LIST
            case UInt8(ascii: ")"): try push(try tuple([]))  // EMPTY_TUPLE
            case UInt8(ascii: "("):  // MARK
                guard marks.count < Self.maxMarks else { throw malformed("more than \(Self.maxMarks) open marks") }
                marks.append(stack.count)
            case UInt8(ascii: "t"): try push(try tuple(try popToMark()))  // TUPLE
            case 0x85: try push(try tuple(try pop(1)))  // TUPLE1
            case 0x86: try push(try tuple(try pop(2)))  // TUPLE2
            case 0x87: try push(try tuple(try pop(3)))  // TUPLE3
            case UInt8(ascii: "s"):  // SETITEM
                let pair = try pop(2)
                try setItems(pair)
            case UInt8(ascii: "u"):  // SETITEMS
                let items = try popToMark()
                guard items.count % 2 == 0 else { throw malformed("SETITEMS with an odd number of values") }
                try setItems(items)
            case UInt8(ascii: "a"):  // APPEND
                let item = try pop()
                try append([item])
            case UInt8(ascii: "e"):  // APPENDS
                // Popped first, in its own statement: a non-mutating call evaluates `self`
                // (the stack) before its arguments.
                let items = try popToMark()
                try append(items)
            case UInt8(ascii: "J"): try push(.int(Int64(Int32(truncatingIfNeeded: try littleEndian(4)))))  // BININT
            case UInt8(ascii: "K"): try push(.int(Int64(try byte())))  // BININT1
            case UInt8(ascii: "M"): try push(.int(Int64(try littleEndian(2))))  // BININT2
            case 0x8A:  // LONG1
                let width = Int(try byte())
                guard width <= 8 else { throw malformed("an integer of \(width) bytes (more than 64 bits)") }
                let raw = try littleEndian(width)
                // Two's complement of `width` bytes, sign-extended to 64 bits.
                let shift = UInt64(64 - 8 * width)
                try push(.int(width == 0 ? 0 : Int64(bitPattern: raw << shift) >> Int64(shift)))
            case UInt8(ascii: "G"):  // BINFLOAT, big-endian
                let bytes = try take(8)
                try push(.float(Double(bitPattern: bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })))
            case 0x88: try push(.bool(true))  // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case UInt8(ascii: "N"): try push(.none)  // NONE
            case UInt8(ascii: "X"): try push(.string(try text(try littleEndian(4))))  // BINUNICODE
            case 0x8C: try push(.string(try text(UInt64(try byte()))))  // SHORT_BINUNICODE
            case 0x8D: try push(.string(try text(try littleEndian(8))))  // BINUNICODE8
            // Python 2 strings; torch.load decodes them as UTF-8.
            case UInt8(ascii: "U"): try push(.string(try text(UInt64(try byte()))))  // SHORT_BINSTRING
            case UInt8(ascii: "T"):  // BINSTRING
                let length = Int32(truncatingIfNeeded: try littleEndian(4))
                guard length >= 0 else { throw malformed("a string of negative length") }
                try push(.string(try text(UInt64(length))))
            case UInt8(ascii: "B"): try push(.bytes(Array(try take(try littleEndian(4)))))  // BINBYTES
            case UInt8(ascii: "C"): try push(.bytes(Array(try take(UInt64(try byte())))))  // SHORT_BINBYTES
            case 0x8E: try push(.bytes(Array(try take(try littleEndian(8)))))  // BINBYTES8
            case UInt8(ascii: "q"): try memoize(Int(try byte()))  // BINPUT
            case UInt8(ascii: "r"): try memoize(Int(try littleEndian(4)))  // LONG_BINPUT
            case 0x94: try memoize(memo.count)  // MEMOIZE
            case UInt8(ascii: "h"): try push(try recall(Int(try byte())))  // BINGET
            case UInt8(ascii: "j"): try push(try recall(Int(try littleEndian(4))))  // LONG_BINGET
            case UInt8(ascii: "c"):  // GLOBAL
                let module = try line()
                let name = try line()
                try push(try resolve(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                let pair = try pop(2)
                guard case .string(let module) = pair[0], case .string(let name) = pair[1] else {
                    throw malformed("STACK_GLOBAL needs two strings")
                }
                try push(try resolve(module: module, name: name))
            case UInt8(ascii: "R"):  // REDUCE
                let arguments = try pop()
                let callable = try pop()
                try push(try reduce(callable, arguments))
            case UInt8(ascii: "b"): try build()  // BUILD
            case UInt8(ascii: "Q"): try push(try persistentLoad(try pop()))  // BINPERSID
            default:
                throw rejected("opcode \(Self.opcodeName(opcode))")
            }
        }
    }

    private mutating func memoize(_ index: Int) throws(TensorFileError) {
        let value = try peek()
        guard memo[index] != nil || memo.count < Self.maxMemo else { throw malformed("more than \(Self.maxMemo) memo entries") }
        memo[index] = value
    }

    private func recall(_ index: Int) throws(TensorFileError) -> PickleValue {
        guard let value = memo[index] else { throw malformed("memo entry \(index) was never stored") }
        return value
    }

    // MARK: - Containers

    private func tuple(_ items: [PickleValue]) throws(TensorFileError) -> PickleValue {
        for item in items { item.freeze() }
        let value = PickleValue.tuple(PickleTuple(items: items))
        guard value.depth <= Self.maxNesting else { throw malformed("containers nested deeper than \(Self.maxNesting)") }
        return value
    }

    private func setItems(_ items: [PickleValue]) throws(TensorFileError) {
        let target = try peek()
        guard case .dict(let dict) = target else { throw malformed("SETITEM(S) on a \(target.kind), not a dict") }
        for pair in stride(from: 0, to: items.count, by: 2) {
            guard let key = PickleKey(items[pair]) else { throw malformed("a dict key of type \(items[pair].kind)") }
            let value = items[pair + 1]
            value.freeze()
            guard !dict.isFrozen else { throw rejected(Self.frozenMutation) }
            guard dict.positions[key] == nil else { throw malformed("dict key '\(key.text)' appears twice") }
            dict.insert(key, value)
            guard dict.depth <= Self.maxNesting else { throw malformed("containers nested deeper than \(Self.maxNesting)") }
        }
    }

    private func append(_ items: [PickleValue]) throws(TensorFileError) {
        let target = try peek()
        guard case .list(let list) = target else { throw malformed("APPEND(S) on a \(target.kind), not a list") }
        for item in items {
            item.freeze()
            guard !list.isFrozen else { throw rejected(Self.frozenMutation) }
            list.append(item)
            guard list.depth <= Self.maxNesting else { throw malformed("containers nested deeper than \(Self.maxNesting)") }
        }
    }

    private static let frozenMutation =
        "a container changed after it was placed in another one (shared mutable or self-referencing containers)"

    // MARK: - Globals and calls

    private func resolve(module: String, name: String) throws(TensorFileError) -> PickleValue {
        let qualified = module + "." + name
        if let callable = PickleCallable(qualifiedName: qualified) { return .callable(callable) }
        if module == "torch", let dtype = TorchDType(torchName: name) { return .dtype(dtype) }
        throw rejected("global '\(qualified)'")
    }

    private func reduce(_ callable: PickleValue, _ arguments: PickleValue) throws(TensorFileError) -> PickleValue {
        guard case .callable(let function) = callable else { throw rejected("REDUCE calling a \(callable.kind)") }
        guard case .tuple(let tuple) = arguments else { throw malformed("REDUCE arguments are a \(arguments.kind), not a tuple") }
        let args = tuple.items
        let name = function.qualifiedName
        func arity(_ counts: ClosedRange<Int>) throws(TensorFileError) {
            guard counts.contains(args.count) else { throw malformed("\(name) called with \(args.count) arguments") }
        }
        switch function {
        case .orderedDict:
            try arity(0...0)
            return .dict(PickleDict())
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            try arity(6...7)
            guard case .storage(let storage) = args[0], let dtype = storage.dtype else {
                throw malformed("\(name) needs a typed storage, got a \(args[0].kind)")
            }
            return .tensor(try tensorView(storage: storage, dtype: dtype, args, metadata: args.count == 7 ? args[6] : nil, name))
        case .rebuildTensorV3:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
            try arity(7...8)
            guard case .storage(let storage) = args[0], storage.dtype == nil, case .dtype(let dtype) = args[6] else {
                throw malformed("\(name) needs an untyped storage and a dtype")
            }
            return .tensor(try tensorView(storage: storage, dtype: dtype, args, metadata: args.count == 8 ? args[7] : nil, name))
        case .rebuildParameter, .rebuildParameterWithState:
            // (data, requires_grad, backward_hooks[, state]): a Parameter is its tensor here;
            // the state holds Python attributes of the Parameter object, which carry no values.
            try arity(function == .rebuildParameter ? 3...3 : 4...4)
            guard case .tensor = args[0], case .bool = args[1], case .dict = args[2] else {
                throw malformed("\(name) needs (tensor, bool, dict)")
            }
            return args[0]
        case .torchSize:
            try arity(1...1)
            guard case .tuple = args[0] else { throw malformed("torch.Size needs a tuple") }
            return args[0]
        case .torchDevice:
            try arity(1...2)
            guard case .string(let type) = args[0] else { throw malformed("torch.device needs a string") }
            if args.count == 2 {
                guard case .int(let index) = args[1] else { throw malformed("torch.device index is not an integer") }
                return .string("\(type):\(index)")
            }
            return .string(type)
        case .storageType, .untypedStorage:
            throw rejected("calling \(name) (storages are only read from the archive)")
        }
    }

    /// The arguments shared by `_rebuild_tensor_v2` and `_v3`: offset, size, stride,
    /// requires_grad and hooks at positions 1...5, then the optional metadata dict.
    private func tensorView(
        storage: PickleStorage, dtype: TorchDType, _ args: [PickleValue], metadata: PickleValue?, _ name: String
    ) throws(TensorFileError) -> PickleTensor {
        guard case .int(let offset) = args[1], offset >= 0 else { throw malformed("\(name): storage offset is not a non-negative integer") }
        let shape = try indices(args[2], "size", name)
        let strides = try indices(args[3], "stride", name)
        guard shape.count == strides.count else {
            throw malformed("\(name): size \(shape) and stride \(strides) have different lengths")
        }
        guard case .bool = args[4], case .dict = args[5] else { throw malformed("\(name): requires_grad or backward_hooks has the wrong type") }
        var negated = false
        if let metadata {
            // torch._utils.get_tensor_metadata: the negative and conjugate view bits.
            guard case .dict(let flags) = metadata else { throw malformed("\(name): tensor metadata is not a dict") }
            for (key, value) in zip(flags.keys, flags.values) {
                guard case .bool(let isSet) = value else { throw malformed("\(name): tensor metadata '\(key.text)' is not a bool") }
                switch key {
                case .string("neg"): negated = isSet
                case .string("conj") where !isSet: break
                case .string("conj"): throw malformed("\(name): conjugate view bit set (complex tensors are not read)")
                default: throw malformed("\(name): unknown tensor metadata '\(key.text)'")
                }
            }
        }
        return PickleTensor(storage: storage, dtype: dtype, offset: Int(offset), shape: shape, strides: strides, negated: negated)
    }

    private func indices(_ value: PickleValue, _ what: String, _ name: String) throws(TensorFileError) -> [Int] {
        guard case .tuple(let tuple) = value, tuple.items.count <= Self.maxRank else {
            throw malformed("\(name): \(what) is not a tuple of at most \(Self.maxRank) integers")
        }
        var result: [Int] = []
        for item in tuple.items {
            guard case .int(let n) = item, n >= 0 else { throw malformed("\(name): \(what) holds a \(item.kind) that is not a non-negative integer") }
            result.append(Int(n))
        }
        return result
    }

    private mutating func build() throws(TensorFileError) {
        _ = try pop()
        // torch.save of a module's state_dict sets the OrderedDict's `_metadata` attribute
        // (module versions); attributes are not entries, so the state is dropped. Objects of
        // any other kind are never given state.
        let object = try peek()
        guard case .dict = object else { throw rejected("BUILD (setting the state of a \(object.kind))") }
    }

    /// `BINPERSID` with the id `('storage', storage_type, key, location, numel)` that
    /// `torch.save` writes for each storage; the bytes are the archive member `data/<key>`.
    private mutating func persistentLoad(_ id: PickleValue) throws(TensorFileError) -> PickleValue {
        guard case .tuple(let tuple) = id, tuple.items.count == 5, case .string("storage") = tuple.items[0],
            case .callable(let type) = tuple.items[1], case .string(let key) = tuple.items[2], !key.isEmpty,
            case .string = tuple.items[3], case .int(let count) = tuple.items[4], count >= 0
        else {
            throw malformed("a persistent id that is not ('storage', type, key, location, size)")
        }
        let dtype: TorchDType?
        switch type {
        case .storageType(let typed): dtype = typed
        case .untypedStorage: dtype = nil
        default: throw malformed("persistent id names \(type.qualifiedName), not a storage type")
        }
        let storage = PickleStorage(key: key, dtype: dtype, count: Int(count))
        if let earlier = storages[key], earlier != storage {
            throw malformed("storage '\(key)' is declared twice with different types or sizes")
        }
        storages[key] = storage
        return .storage(storage)
    }

    /// Names of the opcodes this machine refuses, for the error message.
    static func opcodeName(_ opcode: UInt8) -> String {
        let names: [UInt8: String] = [
            UInt8(ascii: "0"): "POP", UInt8(ascii: "1"): "POP_MARK", UInt8(ascii: "2"): "DUP", UInt8(ascii: "F"): "FLOAT",
            UInt8(ascii: "I"): "INT", UInt8(ascii: "L"): "LONG", UInt8(ascii: "P"): "PERSID", UInt8(ascii: "S"): "STRING",
            UInt8(ascii: "V"): "UNICODE", UInt8(ascii: "d"): "DICT", UInt8(ascii: "g"): "GET", UInt8(ascii: "i"): "INST",
            UInt8(ascii: "l"): "LIST", UInt8(ascii: "o"): "OBJ", UInt8(ascii: "p"): "PUT", 0x81: "NEWOBJ", 0x82: "EXT1",
            0x83: "EXT2", 0x84: "EXT4", 0x8B: "LONG4", 0x8F: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET",
            0x92: "NEWOBJ_EX", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
        ]
        let hex = String(opcode, radix: 16)
        let code = "0x" + (hex.count < 2 ? "0" : "") + hex
        return names[opcode].map { "\($0) (\(code))" } ?? "\(code) (not a pickle opcode)"
    }
}

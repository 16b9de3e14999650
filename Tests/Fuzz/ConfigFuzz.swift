// libFuzzer target: config.json, all the way to a forward pass (Scripts/fuzz.sh).
//
// Structure-aware: an input that does not start with "{" is a list of edits to the valid
// configuration of Tests/DinoModelTests/Fixtures/reg1_nointerp (numbers set to extremes,
// negatives and huge values, fields removed, types swapped); one that does is taken as the
// config.json text itself. Either way the configuration is decoded, the model built with that
// fixture's weights and run once on a small image, so a value that gets past validation must
// also get past loading and inference: no crash, and (with fuzz.sh's -malloc_limit_mb) no
// allocation over the cap.
import DinoModel
import DinoTensor
import Foundation

let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("DinoModelTests/Fixtures/reg1_nointerp")
let weights: SafetensorsFile? = try? SafetensorsFile(url: fixture.appendingPathComponent("model.safetensors"))
/// The fixture's config.json text: parsed again for every input, since a JSONValue tree kept for
/// the whole run is taken for a leak (LeakSanitizer does not see Swift's tagged enum pointers).
let validText: Data = (try? InputFile.contents(of: fixture.appendingPathComponent("config.json"))) ?? Data()

/// Fields the edits choose from: the fixture's and the optional ones it leaves out.
let fields: [String] = ((try? JSONValue.parse(validText).objectValue?.map(\.key)) ?? []) + ["id2label", "num_register_tokens", "use_mask_token"]

/// Values an edit sets: extremes around every bound and overflow edge.
let integers: [Int] = [0, -1, 1, 2, 3, 4, 7, 14, 16, 28, 32, 56, 64, 255, 256, 1023, 1024, 1025, 16384, 16385,
                       Int(Int32.max), 1 << 31, 1 << 32, 14 << 32, 1 << 53, 1 << 62, Int.max, Int.min]
let doubles: [String] = ["0.0", "-0.0", "1e-9", "0.5", "1.5", "4.0", "4.000001", "1e300", "-1e300", "1e-300", "4e9"]
let strings: [String] = ["", "gelu", "relu", "swish", "stage1", "stage2", "stem", "dinov2", "dinov2_with_registers", "x"]

/// The value an edit of kind `kind` with argument byte `argument` sets.
func editedValue(kind: UInt8, argument: UInt8) -> JSONValue? {
    let i = Int(argument)
    switch kind % 9 {
    case 0: return nil  // the field is removed
    case 1: return .number(String(integers[i % integers.count]))
    case 2: return .number(doubles[i % doubles.count])
    case 3: return .string(strings[i % strings.count])
    case 4: return .bool(i % 2 == 0)
    case 5: return .null
    case 6: return .array([.number(String(integers[i % integers.count]))])
    case 7: return .array([.string(strings[i % strings.count]), .string(strings[(i / 16) % strings.count])])
    default: return .object([(String(i % 4), .string(strings[i % strings.count]))])
    }
}

/// The configuration text an input describes, and the input size (height, width) it asks for.
func configurationText(_ bytes: [UInt8]) -> (Data, Int, Int) {
    if bytes.first == UInt8(ascii: "{") { return (Data(bytes), 28, 28) }
    var members = (try? JSONValue.parse(validText).objectValue) ?? []
    var index = 1
    while index + 2 < bytes.count {
        let field = fields[Int(bytes[index]) % fields.count]
        members.removeAll { $0.key == field }
        if let value = editedValue(kind: bytes[index + 1], argument: bytes[index + 2]) { members.append((field, value)) }
        index += 3
    }
    let sizes = bytes.first.map { (14 * (1 + Int($0) % 4), 14 * (1 + Int($0 >> 2) % 4)) } ?? (28, 28)
    return (Data(JSONValue.object(members).serialized.utf8), sizes.0, sizes.1)
}

/// Builds the fixture and runs one valid input before fuzzing starts, so that what lives for the
/// whole process (these globals, the compute threads) is not taken for a leak of the first input.
@_cdecl("LLVMFuzzerInitialize")
public func initializeConfigFuzz(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let valid: [UInt8] = [5]
    _ = valid.withUnsafeBufferPointer { buffer in buffer.baseAddress.map { fuzzConfig($0, buffer.count) } }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let weights else { return 0 }
    let (text, height, width) = configurationText(Array(UnsafeBufferPointer(start: data, count: size)))
    guard let configuration = try? DinoConfiguration.decode(text, path: "fuzz/config.json") else { return 0 }
    _ = configuration.stageNames
    _ = configuration.ffnHiddenSize
    guard let model = try? VisionTransformer(configuration: configuration, weights: weights) else { return 0 }
    let count = configuration.numChannels * height * width
    let pixels = Tensor(shape: [1, configuration.numChannels, height, width], scalars: (0..<count).map { Float($0 % 13) / 13 - 0.5 })
    _ = try? model(pixels, options: ForwardOptions(outputHiddenStates: true))
    if let backbone = try? Backbone(model: model) { _ = try? backbone(pixels) }
    return 0
}

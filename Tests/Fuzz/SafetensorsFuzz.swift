// libFuzzer target: the safetensors header parser and tensor decoding (Scripts/fuzz.sh).
import DinoTensor
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let file = try? SafetensorsFile(data: Data(bytes: data, count: size), name: "fuzz.safetensors") else { return 0 }
    for name in file.tensorNames.prefix(16) {
        _ = try? file.tensor(name)
    }
    return 0
}

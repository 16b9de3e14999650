// libFuzzer target: config.json decoding and validation (Scripts/fuzz.sh).
import DinoModel
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let configuration = try? DinoConfiguration.decode(Data(bytes: data, count: size), path: "fuzz/config.json") {
        _ = configuration.stageNames
        _ = configuration.ffnHiddenSize
    }
    return 0
}

// libFuzzer target: the .pth reader (zip, restricted unpickler, inflate, strided views) (Scripts/fuzz.sh).
import DinoTensor
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTorchCheckpoint(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let checkpoint = try? TorchCheckpoint(data: Data(bytes: data, count: size), name: "fuzz.pth") else { return 0 }
    for name in checkpoint.tensorNames.prefix(16) {
        _ = try? checkpoint.tensor(name)
    }
    return 0
}

// libFuzzer target: the .npy reader (Scripts/fuzz.sh).
import DinoTensor
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNumpy(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? NumpyFile.read(mapped: MappedFile(copying: Data(bytes: data, count: size), path: "fuzz.npy"))
    return 0
}

import DinoTensor
import Foundation

/// Opening a head's checkpoint file, whatever head it holds: a `.safetensors` file, or a
/// `torch.save` archive (`.pth`, `.pt`, `.bin`, `.ckpt`; mmcv's `{"meta", "state_dict",
/// "optimizer"}` included).
public enum HeadCheckpoint {
    /// Top-level entries of mmcv checkpoints that are not weights (run metadata, AdamW state).
    public static let nonWeightRoots = ["meta.", "optimizer."]

    /// The tensors of the checkpoint at `url`, chosen by its extension.
    public static func open(_ url: URL) throws(LayerError) -> any TensorSource {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw .tensorFile(.cannotOpen(path: url.path, reason: "no such file"))
        }
        switch url.pathExtension.lowercased() {
        case "safetensors":
            do { return try SafetensorsFile(url: url) } catch { throw .tensorFile(error) }
        case "pth", "pt", "bin", "ckpt":
            // mmcv checkpoints are {"meta": ..., "state_dict": {...}}; the reader takes the
            // state dict as the root when it holds every tensor of the file.
            do { return try TorchCheckpoint(url: url) } catch { throw .tensorFile(error) }
        default:
            throw .unsupportedCheckpoint(file: url.path, reason: "unknown extension '.\(url.pathExtension)'; expected .safetensors or .pth")
        }
    }

    /// The weights of a checkpoint: every tensor except those under `nonWeightRoots`.
    public static func weights(of source: any TensorSource) -> TensorSourceView {
        TensorSourceView(source) { name in !nonWeightRoots.contains { name.hasPrefix($0) } }
    }

    /// The prefixes under which `anchor` appears in `source`: for each tensor named `anchor` or
    /// ending in `.anchor`, the part before `anchor` (`decode_head.`, `state_dict.decode_head.`,
    /// or the empty string).
    public static func prefixes(of anchor: String, in source: any TensorSource) -> [String] {
        source.tensorNames.filter { $0 == anchor || $0.hasSuffix("." + anchor) }.map { String($0.dropLast(anchor.count)) }
    }
}

import DinoTensor
import Foundation

extension VisionTransformer {
    /// Loads a model from one checkpoint file: a PyTorch `.pth` written by `torch.save` (as
    /// Meta released the original DINOv2 backbones) or a `.safetensors` file.
    ///
    /// - Parameters:
    ///   - configuration: the architecture; nil infers it from the tensor shapes (DINOv2 Meta or
    ///     timm names, heads of width 64, see `DinoConfiguration.inferred(from:file:headDimension:)`;
    ///     DINOv3 Meta files, see `DinoConfiguration.inferredDINOv3(from:file:)`).
    ///   - positionInterpolation: nil picks the reference's choice for the checkpoint's kind.
    ///   - precision: `.bf16` rounds the linear layers' weights to bfloat16 at load.
    ///   - bf16Products: how `.bf16` weights are multiplied; nil is `BFloat16Products.automatic`.
    public convenience init(
        checkpoint url: URL, configuration: DinoConfiguration? = nil, positionInterpolation: PositionInterpolation? = nil,
        precision: WeightPrecision = .fp32, bf16Products: BFloat16Products? = nil
    ) throws(DinoModelError) {
        let source: any TensorSource
        do {
            source = try Self.openCheckpointFile(url)
        } catch {
            throw .tensorFile(error)
        }
        let resolved: DinoConfiguration
        if let configuration {
            resolved = configuration
        } else if DinoConfiguration.isDINOv3Meta(source) {
            // facebookresearch/dinov3 files carry rope_embed.periods, which DINOv2 files never have.
            resolved = try DinoConfiguration.inferredDINOv3(from: source, file: url.path)
        } else {
            resolved = try DinoConfiguration.inferred(from: source, file: url.path)
        }
        try self.init(configuration: resolved, weights: source, positionInterpolation: positionInterpolation, precision: precision,
                      bf16Products: bf16Products)
    }

    /// A `.safetensors` file by its extension; otherwise a `torch.save` archive when the bytes
    /// say so (zip, or the pickle of the legacy format, which the reader then explains) or the
    /// extension is PyTorch's.
    static func openCheckpointFile(_ url: URL) throws(TensorFileError) -> any TensorSource {
        let file = try MappedFile(url: url)
        let pathExtension = url.pathExtension.lowercased()
        if pathExtension == "safetensors" { return try SafetensorsFile(mapped: file) }
        let head = file.bytes.prefix(4)
        let zip = head.starts(with: [0x50, 0x4B, 0x03, 0x04])
        let pickle = head.starts(with: [0x80, 0x02, 0x8A])
        if zip || pickle || ["pth", "pt", "bin", "ckpt"].contains(pathExtension) { return try TorchCheckpoint(mapped: file) }
        return try SafetensorsFile(mapped: file)
    }
}

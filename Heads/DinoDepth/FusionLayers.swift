import DinoLayers
import DinoTensor
import Foundation

// Dimension letters: B batch, C channels, h x w a feature map's size. Tensors are NCHW.

extension Tensor {
    /// `[B, C, h, w]` spatial size.
    var spatialSize: (height: Int, width: Int) { (shape[2], shape[3]) }
}

/// Applies a layer, reporting its error as a `DepthError`.
func apply(_ layer: Conv2d, _ x: Tensor) throws(DepthError) -> Tensor {
    do {
        return try layer(x)
    } catch {
        throw .layer(error)
    }
}

/// How a reassemble stage brings one backbone map to its resolution.
enum Resampling: Sendable {
    /// `ConvTranspose2d(k = s = factor)`: x4 and x2.
    case up(ConvTranspose2d)
    /// Unchanged.
    case identity
    /// `Conv2d(k = 3, stride, padding = 1)`: x0.5.
    case down(Conv2d)

    func callAsFunction(_ x: Tensor) throws(DepthError) -> Tensor {
        switch self {
        case .up(let layer):
            do {
                return try layer(x)
            } catch {
                throw .layer(error)
            }
        case .identity: return x
        case .down(let layer): return try apply(layer, x)
        }
    }

    /// Reads the resampling of `factor` from `<name>.weight` / `<name>.bias` (none for x1).
    static func load(_ weights: inout HeadWeights<DepthError>, _ name: String, channels: Int, factor: Double) throws(DepthError) -> Resampling {
        if factor == 1 { return .identity }
        // Factors are integers or 1/integers: DepthAnythingConfiguration.validate checks the
        // configured ones, and the DPT head's are constants.
        if factor > 1 {
            return .up(try weights.convTranspose(name, channels: channels, kernel: Int(factor), stride: Int(factor)))
        }
        // ref: HF DepthAnythingReassembleLayer: stride int(1 / factor), kernel 3, padding 1.
        return .down(try weights.conv(name, in: channels, out: channels, kernel: 3, bias: true, stride: Int(1 / factor), padding: 1))
    }
}

/// DPT's pre-activation residual unit: `x + conv2(relu(conv1(relu(x))))`, 3x3 convolutions.
struct ResidualConvUnit: Sendable {
    let conv1: Conv2d
    let conv2: Conv2d

    /// `[B, C, h, w]` -> `[B, C, h, w]`.
    func callAsFunction(_ x: Tensor) throws(DepthError) -> Tensor {
        try apply(conv2, try apply(conv1, x.relu()).relu()) + x
    }
}

/// DPT's feature fusion block: adds the skip connection through a residual unit, refines with a
/// second one, upsamples (bilinear, `align_corners=True`) and projects with a 1x1 convolution.
struct FusionBlock: Sendable {
    /// Applied to the skip connection; the deepest block has none (it has no skip).
    let skipUnit: ResidualConvUnit?
    let unit: ResidualConvUnit
    let projection: Conv2d

    /// `x` `[B, C, h, w]`, `skip` `[B, C, h', w']` -> `[B, C, H, W]`, where `(H, W)` is
    /// `outputSize` or twice `(h, w)`.
    func callAsFunction(_ x: Tensor, skip: Tensor?, outputSize: (height: Int, width: Int)? = nil) throws(DepthError) -> Tensor {
        var x = x
        if let skip, let skipUnit {
            // ref: dinov2 FeatureFusionBlock / HF DepthAnythingFeatureFusionLayer: a skip of
            // another size (odd patch grids) is first resized to x, align_corners=False.
            let (h, w) = x.spatialSize
            let resized = skip.spatialSize == (h, w) ? skip : resizeBilinear(skip, height: h, width: w, alignCorners: false)
            x = x + (try skipUnit(resized))
        }
        x = try unit(x)
        let (h, w) = x.spatialSize
        let size = outputSize ?? (2 * h, 2 * w)
        return try apply(projection, resizeBilinear(x, height: size.height, width: size.width, alignCorners: true))
    }

    /// Reads a block: `<name>.<unit names>` as `(skip unit, unit)`, the 1x1 projection under
    /// `projectionName`, residual convolutions with or without bias.
    static func load(_ weights: inout HeadWeights<DepthError>, _ name: String, channels c: Int, units: (String?, String),
                     convNames: (String, String), projectionName: String, residualBias: Bool) throws(DepthError) -> FusionBlock {
        func unit(_ unitName: String) throws(DepthError) -> ResidualConvUnit {
            ResidualConvUnit(
                conv1: try weights.conv("\(name).\(unitName).\(convNames.0)", in: c, out: c, kernel: 3, bias: residualBias, padding: 1),
                conv2: try weights.conv("\(name).\(unitName).\(convNames.1)", in: c, out: c, kernel: 3, bias: residualBias, padding: 1))
        }
        return FusionBlock(
            skipUnit: try units.0.map { (unitName: String) throws(DepthError) -> ResidualConvUnit in try unit(unitName) },
            unit: try unit(units.1),
            projection: try weights.conv("\(name).\(projectionName)", in: c, out: c, kernel: 1, bias: true))
    }
}

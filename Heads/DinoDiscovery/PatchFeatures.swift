import DinoImage
import DinoModel
import DinoTensor

// Dimension letters in this file: B batch, N tokens per image (1 + R + h * w), R registers,
// C hidden size, h x w the patch grid.

/// Which projection of the last block's attention the discovery methods compare patches with.
public enum FeatureKind: String, Sendable, CaseIterable {
    /// Queries.
    case queries = "q"
    /// Keys: LOST's default, the most discriminative (LOST paper, Table 4).
    case keys = "k"
    /// Values.
    case values = "v"

}

/// A patch position on the grid, row-major: `index = row * columns + column`.
public struct PatchPosition: Sendable, Hashable, CustomStringConvertible {
    /// Row, from the top.
    public var row: Int
    /// Column, from the left.
    public var column: Int

    /// A position from its row and column.
    public init(row: Int, column: Int) {
        self.row = row
        self.column = column
    }

    /// `(row, column)`.
    public var description: String { "(\(row), \(column))" }
}

/// The features of one image's patch tokens on their grid, as the discovery methods read them.
public struct PatchFeatures: Sendable {
    /// Grid rows `h`.
    public let rows: Int
    /// Grid columns `w`.
    public let columns: Int
    /// Channels `C` per patch.
    public let channels: Int
    /// `[h * w, C]`, patches row-major.
    public let values: [Float]
    /// Pixels per patch side.
    public let patchSize: Int
    /// Width of the image before padding, in pixels: boxes are clipped to it.
    public let imageWidth: Int
    /// Height of the image before padding, in pixels.
    public let imageHeight: Int

    /// Patch count `h * w`.
    public var count: Int { rows * columns }

    /// Features `[h * w, C]` of an image of `imageWidth x imageHeight` pixels padded (bottom/right)
    /// to the grid. Throws when the sizes disagree or a value is not finite.
    public init(values: [Float], rows: Int, columns: Int, channels: Int, patchSize: Int,
                imageWidth: Int, imageHeight: Int) throws(DiscoveryError) {
        guard rows > 0, columns > 0, channels > 0, values.count == rows * columns * channels else {
            throw .featureShape(expected: [rows * columns, channels], actual: [values.count])
        }
        guard patchSize > 0 else { throw .invalidParameter(name: "patch size", value: "\(patchSize)", expected: "positive") }
        guard imageWidth > 0, imageWidth <= columns * patchSize, imageHeight > 0, imageHeight <= rows * patchSize else {
            throw .invalidParameter(name: "image size", value: "\(imageWidth)x\(imageHeight)",
                                    expected: "positive and within the \(columns * patchSize)x\(rows * patchSize) grid")
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteFeature(patch: bad / channels, channel: bad % channels)
        }
        self.values = values
        self.rows = rows
        self.columns = columns
        self.channels = channels
        self.patchSize = patchSize
        self.imageWidth = imageWidth
        self.imageHeight = imageHeight
    }

    /// The position of patch `index`.
    public func position(_ index: Int) -> PatchPosition {
        PatchPosition(row: index / columns, column: index % columns)
    }
}

/// Reads the last block's query, key or value projections of each image's patch tokens from a
/// backbone pass.
public struct LastBlockFeatures: Sendable {
    /// The model (for running a pass on prepared images).
    public let model: VisionTransformer
    /// The projection read.
    public var kind: FeatureKind

    /// A reader of `kind` features from `model`'s last block.
    public init(model: VisionTransformer, kind: FeatureKind = .keys) {
        self.model = model
        self.kind = kind
    }

    /// The last block's 0-based index.
    public var block: Int { model.configuration.numHiddenLayers - 1 }

    /// What the reader needs from a pass: the last block's projections.
    public var featureRequest: FeatureRequest { .projections([block]) }

    /// Runs one pass on prepared images of one size and returns each image's patch features.
    public func callAsFunction(_ images: [PreparedImage]) throws(DiscoveryError) -> [PatchFeatures] {
        guard let first = images.first else { return [] }
        guard images.allSatisfy({ $0.pixels.shape == first.pixels.shape }) else {
            throw .featureShape(expected: first.pixels.shape, actual: images.first { $0.pixels.shape != first.pixels.shape }?.pixels.shape ?? [])
        }
        let pass: BackboneFeatures
        do {
            pass = try model.features(Tensor.stack(images.map(\.pixels)), request: featureRequest, contentRects: images.map(\.contentRect))
        } catch {
            throw .model(error)
        }
        return try features(of: pass)
    }

    /// The patch features of each image of a pass that kept `featureRequest`; each image's box
    /// will be clipped to its content (`BackboneFeatures.contentRects`).
    public func features(of pass: BackboneFeatures) throws(DiscoveryError) -> [PatchFeatures] {
        let projections: AttentionProjections
        do {
            projections = try pass.projections(block: block)
        } catch {
            throw .missingProjections(block: block, available: Array(pass.request.projectionBlocks))
        }
        let tokens = switch kind {
        case .queries: projections.query
        case .keys: projections.key
        case .values: projections.value
        }
        let patches = tokens.patchTokens  // [B, h * w, C]
        let layout = pass.layout
        let (h, w, c, p) = (layout.gridHeight, layout.gridWidth, tokens.channels, pass.patchSize)
        var result: [PatchFeatures] = []
        for (b, content) in pass.contentRectsInInput.enumerated() {
            let values = Array(patches.scalars[(b * h * w * c)..<((b + 1) * h * w * c)])
            // The box is clipped to the image's right and bottom edges inside the padded grid.
            result.append(try PatchFeatures(values: values, rows: h, columns: w, channels: c, patchSize: p,
                                            imageWidth: min(content.x + content.width, w * p),
                                            imageHeight: min(content.y + content.height, h * p)))
        }
        return result
    }
}

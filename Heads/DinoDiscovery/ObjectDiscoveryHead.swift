import DinoModel

/// Unsupervised object discovery as a head: each image's patches compared through the last
/// block's keys (or queries / values), then LOST or TokenCut.
public struct ObjectDiscoveryHead: DenseHead {
    /// Reads the last block's projections.
    public let reader: LastBlockFeatures
    /// LOST or TokenCut, with its settings.
    public var method: DiscoveryMethod
    /// Largest patch count per image: the methods' similarity matrix grows with its square, so a
    /// larger image fails (with a hint to resize) instead of taking that memory.
    public var maxPatches: Int

    /// `method` on `kind` features of `model`'s last block.
    public init(model: VisionTransformer, method: DiscoveryMethod, kind: FeatureKind = .keys, maxPatches: Int = 12_000) {
        reader = LastBlockFeatures(model: model, kind: kind)
        self.method = method
        self.maxPatches = maxPatches
    }

    /// The last block's projections.
    public var featureRequest: FeatureRequest { reader.featureRequest }

    /// Each image's object, or why it has none.
    public func predict(_ features: BackboneFeatures) throws -> [Result<DiscoveredObject, DiscoveryError>] {
        try objects(features)
    }

    /// `predict(_:)` with its error type: a failure of the whole batch throws, an image without an
    /// object is a failure in its place.
    public func objects(_ features: BackboneFeatures) throws(DiscoveryError) -> [Result<DiscoveredObject, DiscoveryError>] {
        let patches = features.layout.patches
        guard patches <= maxPatches else {
            let (h, w) = features.inputSize
            throw .tooManyPatches(width: w, height: h, patches: patches, limit: maxPatches)
        }
        return try reader.features(of: features).map { imageFeatures in
            Result { () throws(DiscoveryError) in try method.discover(imageFeatures) }
        }
    }
}

import DinoImage

/// A binary map over the patch grid.
public struct PatchMask: Sendable, Equatable {
    /// Grid rows `h`.
    public let rows: Int
    /// Grid columns `w`.
    public let columns: Int
    /// `[h * w]`, row-major.
    public var values: [Bool]

    /// A mask from its grid size and row-major values.
    public init(rows: Int, columns: Int, values: [Bool]) {
        precondition(values.count == rows * columns, "\(values.count) values are not a \(rows)x\(columns) grid")
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    /// Whether the patch at `row`, `column` is set.
    public subscript(row: Int, column: Int) -> Bool { values[row * columns + column] }

    /// The number of patches set.
    public var count: Int { values.reduce(0) { $0 + ($1 ? 1 : 0) } }

    // ref: scipy.ndimage.label with its default structuring element (a cross), as LOST and
    // TokenCut label the mask (valeoai/LOST object_discovery.py detect_box).
    /// The 4-connected component holding `seed` (empty when the seed is not set).
    public func component(containing seed: PatchPosition) -> PatchMask {
        var inside = [Bool](repeating: false, count: values.count)
        let start = seed.row * columns + seed.column
        guard values[start] else { return PatchMask(rows: rows, columns: columns, values: inside) }
        var stack = [start]
        inside[start] = true
        while let index = stack.popLast() {
            let (r, c) = (index / columns, index % columns)
            for (nr, nc) in [(r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)] where nr >= 0 && nr < rows && nc >= 0 && nc < columns {
                let next = nr * columns + nc
                if values[next] && !inside[next] {
                    inside[next] = true
                    stack.append(next)
                }
            }
        }
        return PatchMask(rows: rows, columns: columns, values: inside)
    }

    /// Rows, then columns, of the patches set: `(rowMin, columnMin, rowMax, columnMax)`, inclusive;
    /// nil for an empty mask.
    public var extent: (rowMin: Int, columnMin: Int, rowMax: Int, columnMax: Int)? {
        var extent: (Int, Int, Int, Int)?
        for (index, set) in values.enumerated() where set {
            let (r, c) = (index / columns, index % columns)
            if let (r0, c0, r1, c1) = extent {
                extent = (min(r0, r), min(c0, c), max(r1, r), max(c1, c))
            } else {
                extent = (r, c, r, c)
            }
        }
        return extent
    }
}

/// An axis-aligned box in pixels, `[x0, y0, x1, y1]` with the ends excluded.
public struct BoundingBox: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Left edge (first column inside).
    public var x0: Int
    /// Top edge (first row inside).
    public var y0: Int
    /// Right edge (first column past the box).
    public var x1: Int
    /// Bottom edge (first row past the box).
    public var y1: Int

    /// A box from its edges.
    public init(x0: Int, y0: Int, x1: Int, y1: Int) {
        self.x0 = x0
        self.y0 = y0
        self.x1 = x1
        self.y1 = y1
    }

    /// `[x0, y0, x1, y1]`.
    public var coordinates: [Int] { [x0, y0, x1, y1] }

    /// `[x0, y0, x1, y1]`.
    public var description: String { "[\(x0), \(y0), \(x1), \(y1)]" }

    // ref: valeoai/LOST datasets.py bbox_iou (from ultralytics/yolov5): `w1, h1 = b1_x2 - b1_x1,
    // b1_y2 - b1_y1 + eps` and `union = w1 * h1 + w2 * h2 - inter + eps` on int64 boxes, which
    // torch promotes to float32; the order of operations is kept so that ties at 0.5 agree.
    /// Intersection over union as LOST's evaluation computes it: widths `x1 - x0` (no +1), in
    /// float32, with 1e-7 added to each height and to the union.
    public func intersectionOverUnion(_ other: BoundingBox) -> Float {
        let eps: Float = 1e-7
        let inter = max(0, min(x1, other.x1) - max(x0, other.x0)) * max(0, min(y1, other.y1) - max(y0, other.y0))
        let (w1, h1) = (Float(x1 - x0), Float(y1 - y0) + eps)
        let (w2, h2) = (Float(other.x1 - other.x0), Float(other.y1 - other.y0) + eps)
        let union = w1 * h1 + w2 * h2 - Float(inter) + eps
        return Float(inter) / union
    }

    /// This box, given in the prepared image's pixels, in the original image's pixels: clipped to
    /// the image content, then scaled back through any resize or crop.
    public func inOriginal(of prepared: PreparedImage) -> BoundingBox {
        let content = prepared.contentRect, source = prepared.sourceRect
        func map(_ value: Int, _ origin: Int, _ length: Int, _ sourceOrigin: Int, _ sourceLength: Int) -> Int {
            let clipped = min(max(value, origin), origin + length)
            // Exact for the unresized presets (length == sourceLength), nearest pixel otherwise.
            let scaled = (Double(clipped - origin) * Double(sourceLength) / Double(length)).rounded()
            return sourceOrigin + Int(scaled)
        }
        return BoundingBox(x0: map(x0, content.x, content.width, source.x, source.width),
                           y0: map(y0, content.y, content.height, source.y, source.height),
                           x1: map(x1, content.x, content.width, source.x, source.width),
                           y1: map(y1, content.y, content.height, source.y, source.height))
    }
}

/// The object a discovery method found in one image.
public struct DiscoveredObject: Sendable, Equatable {
    /// The box around `component`, in pixels of the unpadded image.
    public var box: BoundingBox
    /// The patch the object grew from.
    public var seed: PatchPosition
    /// The patches the method assigns to the object before connectivity: LOST's `M > 0`,
    /// TokenCut's side of the cut holding the seed.
    public var foreground: PatchMask
    /// The 4-connected component of `foreground` holding the seed: the object.
    public var component: PatchMask
    /// How distinct the object is, in [0, 1], higher is clearer. LOST: the share of the other
    /// patches not positively correlated with the seed, `1 - degree(seed) / (N - 1)`. TokenCut:
    /// `1 - lambda2 / 2`, lambda2 in [0, 2] the normalized-cut value of the bipartition.
    public var score: Float
}

extension DiscoveredObject {
    // ref: valeoai/LOST object_discovery.py detect_box (the max ends are clipped, the min ends
    // are never past the image since the padding is at the bottom and right).
    /// The result for `component` grown from `seed`: the box is the component's patch extent in
    /// pixels, `[xmin, ymin, xmax + 1, ymax + 1] * p`, clipped to the unpadded image.
    init(seed: PatchPosition, foreground: PatchMask, features: PatchFeatures, score: Float) throws(DiscoveryError) {
        let component = foreground.component(containing: seed)
        guard let extent = component.extent else { throw .seedInBackground(row: seed.row, column: seed.column) }
        let p = features.patchSize
        box = BoundingBox(x0: extent.columnMin * p, y0: extent.rowMin * p,
                          x1: min((extent.columnMax + 1) * p, features.imageWidth),
                          y1: min((extent.rowMax + 1) * p, features.imageHeight))
        self.seed = seed
        self.foreground = foreground
        self.component = component
        self.score = score
    }
}

/// A discovery method with its settings.
public enum DiscoveryMethod: Sendable, Equatable {
    /// LOST: seed of lowest degree, expanded by its most similar low-degree patches.
    case lost(LOST)
    /// TokenCut: normalized cut of the patch-similarity graph.
    case tokenCut(TokenCut)

    /// Finds the main object in an image's patch features.
    public func discover(_ features: PatchFeatures) throws(DiscoveryError) -> DiscoveredObject {
        switch self {
        case .lost(let method): return try method(features)
        case .tokenCut(let method): return try method(features)
        }
    }

    /// A one-line description with the settings.
    public var summary: String {
        switch self {
        case .lost(let method):
            return "LOST (k = \(method.potentialCount), Gram bias \(method.gramBias))"
        case .tokenCut(let method):
            return "TokenCut (tau = \(method.threshold), eps = \(method.nonEdgeWeight))"
        }
    }
}

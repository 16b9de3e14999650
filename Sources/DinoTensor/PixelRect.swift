// Shared by image preprocessing, the backbone pass (padding, windows) and the heads.

/// An axis-aligned rectangle in pixels.
public struct PixelRect: Sendable, Hashable {
    /// Left edge (first column).
    public var x: Int
    /// Top edge (first row).
    public var y: Int
    /// Columns.
    public var width: Int
    /// Rows.
    public var height: Int

    /// A rectangle from its top-left corner and size.
    public init(x: Int, y: Int, width: Int, height: Int) {
        self.x = x
        self.y = y
        self.width = width
        self.height = height
    }
}

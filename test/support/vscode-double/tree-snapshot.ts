import { TreeItem, testing } from './index';

export interface RenderedNode {
  element: unknown;
  item: TreeItem;
  children: RenderedNode[];
}

/** Walks a registered tree view the way VS Code would draw it fully expanded. */
export async function renderTree(viewId: string): Promise<RenderedNode[]> {
  const view = testing.treeViews.get(viewId);
  if (!view) {
    throw new Error(`no tree view ${viewId} was created`);
  }
  const walk = async (element?: unknown): Promise<RenderedNode[]> => {
    const children = ((await view.provider.getChildren(element)) ?? []) as unknown[];
    return Promise.all(
      children.map(async (child) => {
        const item = (await view.provider.getTreeItem(child)) as TreeItem;
        return { element: child, item, children: item.collapsibleState === 0 ? [] : await walk(child) };
      }),
    );
  };
  return walk();
}

/** `alice/docs/a.txt`-style paths of every leaf and folder, for compact assertions. */
export function treePaths(nodes: RenderedNode[], prefix = ''): string[] {
  return nodes.flatMap((node) => {
    const here = `${prefix}${node.item.label}`;
    return node.children.length > 0 ? [here + '/', ...treePaths(node.children, `${here}/`)] : [here];
  });
}

export function findNode(nodes: RenderedNode[], pathParts: string[]): RenderedNode | undefined {
  const [first, ...rest] = pathParts;
  const node = nodes.find((candidate) => candidate.item.label === first);
  return node && rest.length > 0 ? findNode(node.children, rest) : node;
}

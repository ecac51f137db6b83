// Accessible names from ../shared/UI.md, in one place: a rename is one change here, and tests
// import this table. Never rename or drop an entry: outside test suites drive the app by them.
export const L = {
  // Signing in
  handle: "Handle",
  password: "Password",
  displayName: "Display name",
  inviteCode: "Invite code",
  logIn: "Log in",
  createAccount: "Create account",
  logOut: "Log out",
  // Chat list
  chats: "Chats",
  selfChat: "Message yourself",
  newChat: "New chat",
  startChat: "Start chat",
  newGroup: "New group",
  groupName: "Group name",
  members: "Members",
  createGroup: "Create group",
  settings: "Settings",
  recordingAudio: "recording audio…",
  typing: "typing…",
  offline: "Offline",
  // Chat view
  groupInfo: "Group info",
  addMember: "Add member",
  remove: "Remove",
  leaveGroup: "Leave group",
  messages: "Messages",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
  played: "Played",
  voiceMessage: "Voice message",
  audioMessage: "Audio message",
  play: "Play",
  pause: "Pause",
  seek: "Seek",
  playbackSpeed: "Playback speed",
  messageActions: "Message actions",
  reply: "Reply",
  forward: "Forward",
  forwardTo: "Forward to",
  star: "Star",
  unstar: "Unstar",
  download: "Download",
  deleteForMe: "Delete for me",
  deleteForEveryone: "Delete for everyone",
  message: "Message",
  send: "Send",
  recordVoice: "Record voice message",
  attachAudio: "Attach audio",
  audioFile: "Audio file",
  chatMenu: "Chat menu",
  exportChat: "Export chat",
  // Recording
  recordingTime: "Recording time",
  slideToCancel: "Slide to cancel",
  pauseRecording: "Pause recording",
  resumeRecording: "Resume recording",
  playRecording: "Play recording",
  deleteRecording: "Delete recording",
  sendRecording: "Send recording",
  /** Added (not in UI.md): a toggle on a locked recording. */
  viewOnce: "View once",
  unsentRecording: "Unsent recording",
  playUnsent: "Play unsent recording",
  sendUnsent: "Send unsent recording",
  deleteUnsent: "Delete unsent recording",
  // Sending a file
  sendAudio: "Send audio",
  cancel: "Cancel",
  cancelUpload: "Cancel upload",
  // Sharing in
  sendTo: "Send to…",
} as const;

export const SPEEDS = [1, 1.5, 2] as const;
export function speedLabel(speed: number): string {
  return `${speed}×`;
}
